"""Re-submitting rejected records once their cause is fixed (`roamclear rejected retry`).

A retry takes the record as the archive holds it (raw_event: whole and exact; the rejection
row's copy of the payload is cut at 1,000,000 characters), gives its envelope a new event
id and time, and submits it to cdr.submitted with the hub's proof. Each retry is a new event
with its own outcome, linked to the rejection in rejection_retry.

The hub vouches only for what was proven the first time: a rejection whose record carried no
valid proof of its submitter (`unauthenticated_submitter`, or decided before proofs existed)
is never re-submitted, `--force` or not; its partner re-sends it, signed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import psycopg

from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import new_producer, send_records
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.ocpi.types import format_datetime
from schemas.wire import encode_json
from settlement.clearing.reasons import RETRYABLE, Stage
from settlement.store import books
from settlement.store.db import Row

# A retried record is produced alone when it is larger than a record batch; the broker's own
# limit still applies (Apache Kafka: message.max.bytes, 1 MiB by default).
RECORD_BYTES_MAX: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Retry:
    rejection_id: int
    key: bytes | None
    value: bytes
    event_id: str


@dataclass(slots=True)
class RetryPlan:
    """What will be re-submitted, and what is refused with the reason."""

    retries: list[Retry] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def fresh_envelope(archived: bytes, event_id: str, now: datetime) -> bytes:
    """The same envelope (CDR and submitter, numbers exact) with a new event id and time."""
    document = loads_exact(archived)
    if not isinstance(document, dict):
        raise ValueError("the archived record is not an event envelope")
    document["event_id"] = event_id
    document["occurred_at"] = format_datetime(now)
    return encode_json(document).encode()


def plan(conn: psycopg.Connection[Row], rejection_ids: list[int], force: bool) -> RetryPlan:
    result = RetryPlan()
    found = {row["rejection_id"]: row for row in books.rejected_records(conn, rejection_ids)}
    now = datetime.now(UTC)
    for rejection_id in rejection_ids:
        row = found.get(rejection_id)
        if row is None:
            result.refused[rejection_id] = "no such rejection"
            continue
        reason = row["reason_code"]
        if row["stage"] == Stage.INGEST:
            result.refused[rejection_id] = (
                f"{reason}: refused at the OCPI receiver (stage ingest), so it never reached "
                "the topic and the hub vouches for nothing in it; the partner sends it again"
            )
            continue
        if row["proof"] is None:
            result.refused[rejection_id] = (
                f"{reason}: its record carried no proof of its submitter, so the hub cannot "
                "vouch for it; the partner must re-send it, signed"
            )
            continue
        if reason not in RETRYABLE and not force:
            result.refused[rejection_id] = (
                f"{reason} is the partner's to fix; --force re-submits it anyway"
            )
            continue
        event_id = str(uuid.uuid4())
        try:
            value = fresh_envelope(bytes(row["value"] or b""), event_id, now)
        except ValueError as exc:
            result.refused[rejection_id] = f"{reason}: the record is not an envelope ({exc})"
            continue
        key = None if row["key"] is None else bytes(row["key"])
        result.retries.append(Retry(rejection_id, key, value, event_id))
    return result


async def submit(settings: Settings, retries: list[Retry]) -> None:
    """Produce the retries with the hub's proof and wait for the broker's acks."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    producer = new_producer(settings.kafka_bootstrap_servers, max_request_size=RECORD_BYTES_MAX)
    await producer.start()
    try:
        records = [(topic, retry.key, retry.value) for retry in retries]
        for future in await send_records(producer, records, hub_signer(settings)):
            await future
    finally:
        await producer.stop()
