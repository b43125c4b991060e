"""The clearing agent: batches of cdr.submitted records → `decode_batch` → `commit_batch`.

Two batches are in flight: while batch N's PostgreSQL transaction and broker acks are under
way, batch N+1 is decoded (the worker's CPU would otherwise idle during those round trips).
Decisions stay strictly in order: batch N+1's transaction starts after N's has committed.
Events are acked by hand (`noack_take`), each batch only after its commit, so Kafka offsets
never run ahead of PostgreSQL.

Failure policy: bad input never raises (it becomes a rejection); anything else (PostgreSQL
or broker unavailable) raises, which stops the worker without acking the batch, so the
events are delivered again to whichever worker takes the partitions. While idle, a
watchdog (pipeline/agents/liveness.py) raises the same way when either has gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import faust
from faust.types import EventT

from pipeline.agents.liveness import Watchdog
from pipeline.clearing.batch import BatchResult, Clearing, commit_batch, decode_batch, send_with
from pipeline.clearing.events import EventWriter
from pipeline.clearing.refcache import ReferenceCache
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_hub_keyring, record_proof_keys
from pipeline.kafka.client import new_producer
from pipeline.kafka.faust_driver import UnreadableMessage
from pipeline.observe.logs import record_fields
from pipeline.observe.metrics import observe_batch
from pipeline.observe.worker_http import PROGRESS
from schemas.hub.party import PartyRef
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import connect_async
from settlement.store.urls import redacted

log = logging.getLogger("roamclear.clearing")

# How long a stopping worker lets the batch in flight finish (else it is rolled back and
# delivered again); well within the worker's whole stop, liveness.STOP_S_MAX.
STOP_WAIT_S = 4.0


def record_of(event: Any) -> SubmittedRecord:
    """A consumed event as the archive keeps it (the session agent's too)."""
    message = event.message
    return SubmittedRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=None if message.timestamp is None else int(message.timestamp * 1000),
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
        unreadable=message.unreadable if isinstance(message, UnreadableMessage) else None,
    )


def register(app: faust.App, settings: Settings, submitted: faust.TopicT) -> None:
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    limits = PlausibilityLimits(energy_kwh_max=settings.energy_kwh_max)
    writer = EventWriter(settings.topic_prefix, PartyRef.parse(settings.hub_party))
    bootstrap_servers = settings.kafka_bootstrap_servers
    database_url = role_url(settings, DbRole.WORKER)  # as roamclear_worker, never the admin

    @app.agent(submitted, name="clearing")
    async def clearing(stream: faust.StreamT[bytes]) -> None:
        conn = await connect_async(database_url)
        await prepare(conn)
        producer = new_producer(bootstrap_servers)
        await producer.start()
        clearing = _clearing(settings, limits, writer, producer)
        log.info(
            "clearing agent started on %s, PostgreSQL as %s",
            type(asyncio.get_running_loop()).__module__,
            redacted(database_url),
        )
        committing: asyncio.Future[None] | None = None

        async def commit(records: list[SubmittedRecord], decoded: Any, events: Any) -> None:
            started = time.perf_counter()
            result = await commit_batch(conn, records, decoded, clearing)
            for event in events:
                await stream.ack(event)
            _batch_done(records, result, time.perf_counter() - started)

        # A batch that fails to commit must stop the agent now, not when the next batch
        # arrives (on a quiet topic that may be never): the failure cancels the agent's
        # wait, and the agent raises the failure itself.
        agent = asyncio.current_task()
        assert agent is not None

        def stop_agent_on_failure(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is not None:
                agent.cancel()

        # An idle agent would not notice PostgreSQL or the broker gone: the watchdog does,
        # and stops the agent the same way.
        watchdog = Watchdog(database_url, conn, producer)
        watching = watchdog.start()
        watching.add_done_callback(stop_agent_on_failure)
        try:
            async for events in cast(faust.Stream[bytes], stream).noack_take(
                settings.clearing_batch_max, within=settings.clearing_batch_within_s
            ):
                batch = cast(Sequence[EventT[bytes]], events)
                records = [record_of(event) for event in batch]
                decoded = await decode_batch(records)
                if committing is not None:
                    await committing
                committing = asyncio.ensure_future(commit(records, decoded, batch))
                committing.add_done_callback(stop_agent_on_failure)
            if committing is not None:
                await committing
        except asyncio.CancelledError:
            failure = _failure(committing) or _failure(watching)
            if failure is not None:
                raise failure from None
            raise
        finally:
            await watchdog.stop()
            if committing is not None and not committing.done():
                await asyncio.wait({committing}, timeout=STOP_WAIT_S)
                committing.cancel()
            await producer.stop()
            await conn.close()


def _clearing(
    settings: Settings, limits: PlausibilityLimits, writer: EventWriter, producer: Any
) -> Clearing:
    """What the agent clears every batch with: a fresh reference cache, the hub's keys (read
    here, when the agent starts, not when the app is built) and the agent's producer."""

    async def send(records: Any) -> None:
        await send_with(producer, records)

    keys = record_proof_keys(load_hub_keyring(settings))
    return Clearing(ReferenceCache(), limits, writer, send, keys)


def _failure(committing: asyncio.Future[None] | None) -> BaseException | None:
    if committing is None or not committing.done() or committing.cancelled():
        return None
    return committing.exception()


def _batch_done(records: Sequence[SubmittedRecord], result: BatchResult, commit_s: float) -> None:
    """A committed batch counted (metrics, progress for the lag) and logged."""
    observe_batch(result.received, result.skipped, result.outcomes, result.reasons, commit_s)
    PROGRESS.committed(records)
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
        extra=record_fields(first.topic, first.partition, first.offset),
    )
