"""The session agent: roamclear.session.events → session_version in PostgreSQL.

Thin: each batch of records goes to `settlement.store.session_versions.record_sessions`
(archive, decode with the submitter's proof, store versions and rejections) in one
transaction, and is acked only after the commit. At-least-once delivery, one version per
event: a redelivered record is found archived and skipped, an event produced twice is
stored once (its event id is unique).

Failure policy: bad input never raises (it is rejected with its reason and kept, as
clearing's rejections are); PostgreSQL or the broker gone raises, which stops the worker
without acking (CrashingSupervisor), and the records come again to whichever worker takes
the partitions. The clearing agent's watchdog stops an idle worker whose servers went.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, cast

import faust
from faust.types import EventT

from pipeline.agents.clearing import record_of
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_hub_keyring, record_proof_keys
from pipeline.observe.logs import record_fields
from settlement.store.clearing_store import prepare
from settlement.store.db import connect_async
from settlement.store.session_versions import SessionBatchResult, record_sessions

log = logging.getLogger("roamclear.sessions")

SESSION_BATCH_MAX: Final = 500  # records per PostgreSQL transaction
SESSION_BATCH_WITHIN_S: Final = 0.2  # how long a batch waits to fill


def register(app: faust.App, settings: Settings, topic: faust.TopicT) -> None:
    assert settings.database_url is not None
    database_url = role_url(settings, DbRole.WORKER)  # as roamclear_worker, never the admin

    @app.agent(topic, name="sessions")
    async def sessions(stream: faust.StreamT[bytes]) -> None:
        conn = await connect_async(database_url)
        await prepare(conn)
        keys = record_proof_keys(load_hub_keyring(settings))  # read when the agent starts
        try:
            async for events in cast(faust.Stream[bytes], stream).noack_take(
                SESSION_BATCH_MAX, within=SESSION_BATCH_WITHIN_S
            ):
                batch = cast(Sequence[EventT[bytes]], events)
                records = [record_of(event) for event in batch]
                async with conn.transaction():
                    result = await record_sessions(conn, records, keys, datetime.now(UTC))
                for event in batch:
                    await stream.ack(event)
                _log_batch(records[0].topic, records[0].partition, records[0].offset, result)
        finally:
            await conn.close()


def _log_batch(topic: str, partition: int, offset: int, result: SessionBatchResult) -> None:
    log.info(
        "sessions %s[%d]@%d: %d received, %d replayed, %d versions, %d duplicates, rejected %s",
        topic,
        partition,
        offset,
        result.received,
        result.skipped,
        result.versions,
        result.duplicates,
        result.rejected,
        extra=record_fields(topic, partition, offset),
    )
