"""Session events on the real broker, stored by the session agent's own function as the
worker role, as the agent does it (tests/integration/clearing does the same for CDRs)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import hub_signer, load_hub_keyring, record_proof_keys
from pipeline.kafka.client import Signer, produce, read_from_beginning, records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.wire import encode_json_bytes
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import connect_async
from settlement.store.session_versions import SessionBatchResult, record_sessions
from tests.integration.clearing.helpers import submitted


def session_event(
    session: dict[str, Any],
    occurred_at: str = "2026-03-04T10:00:00Z",
    submitter: str = "NL*TNM",
    event_type: str = "session.event",
) -> bytes:
    country, party = submitter.split("*")
    return encode_json_bytes(
        {
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "version": 1,
            "occurred_at": occurred_at,
            "submitter": {"country_code": country, "party_id": party},
            "session": session,
        }
    )


def key_of(session: dict[str, Any]) -> bytes:
    return f"{session['country_code']}*{session['party_id']}*{session['id']}".upper().encode()


def produce_sessions(
    settings: Settings, records: list[tuple[bytes, bytes]], sign: Signer | bool = True
) -> list[SubmittedRecord]:
    """Produce to session.events (with the hub's proof unless `sign` is False or another
    signer); returns the records produced, read back with the broker's positions."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.SESSION_EVENTS)
    signer = hub_signer(settings) if sign is True else (sign or None)
    asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records, signer))
    values = {value for _, value in records}
    return [record for record in read_sessions(settings) if record.value in values]


def read_sessions(settings: Settings) -> list[SubmittedRecord]:
    """Every record session.events holds."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.SESSION_EVENTS)
    count = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
    read = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, topic, count))
    return [submitted(r) for r in read]


def store(
    settings: Settings, records: list[SubmittedRecord], now: datetime | None = None
) -> SessionBatchResult:
    """One batch through the session agent's store, as roamclear_worker."""

    async def run() -> SessionBatchResult:
        assert settings.database_url
        conn = await connect_async(role_url(settings, DbRole.WORKER))
        try:
            await prepare(conn)
            keys = record_proof_keys(load_hub_keyring(settings))
            async with conn.transaction():
                return await record_sessions(conn, records, keys, now or datetime.now(UTC))
        finally:
            await conn.close()

    return asyncio.run(run())
