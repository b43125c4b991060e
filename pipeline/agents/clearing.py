"""The clearing agent: batches of cdr.submitted records → `process_batch`.

Failure policy: bad input never raises (it becomes a rejection); anything else (PostgreSQL
or broker unavailable) raises, which stops the worker without acking the batch, so the
events are delivered again to whichever worker takes the partitions.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import faust

from pipeline.clearing.batch import process_batch, send_with
from pipeline.clearing.events import EventWriter
from pipeline.clearing.refcache import ReferenceCache
from pipeline.config import Settings
from pipeline.kafka.client import new_producer
from schemas.hub.party import PartyRef
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import connect_async

log = logging.getLogger("roamclear.clearing")


def _record(event: Any) -> SubmittedRecord:
    message = event.message
    return SubmittedRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=None if message.timestamp is None else int(message.timestamp * 1000),
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
    )


def register(app: faust.App, settings: Settings, submitted: faust.TopicT) -> None:
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    limits = PlausibilityLimits(energy_kwh_max=settings.energy_kwh_max)
    writer = EventWriter(settings.topic_prefix, PartyRef.parse(settings.hub_party))

    @app.agent(submitted, name="clearing")
    async def clearing(stream: faust.StreamT[bytes]) -> None:
        assert settings.database_url is not None and settings.kafka_bootstrap_servers
        conn = await connect_async(settings.database_url)
        await prepare(conn)
        producer = new_producer(settings.kafka_bootstrap_servers)
        await producer.start()
        refs = ReferenceCache()

        async def send(records: Any) -> None:
            await send_with(producer, records)

        try:
            async for events in cast(faust.Stream[bytes], stream).take_events(
                settings.clearing_batch_max, within=settings.clearing_batch_within_s
            ):
                records = [_record(event) for event in events]
                result = await process_batch(conn, records, refs, limits, writer, send)
                first, last = records[0], records[-1]
                log.info(
                    "batch %s[%d]@%d..[%d]@%d: %d received, %d replayed, %s",
                    first.topic,
                    first.partition,
                    first.offset,
                    last.partition,
                    last.offset,
                    result.received,
                    result.skipped,
                    dict(result.outcomes),
                )
        finally:
            await producer.stop()
            await conn.close()
