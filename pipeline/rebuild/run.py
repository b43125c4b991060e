"""`roamclear rebuild --into URL`: the books cleared again, into an empty database, from
what the broker holds, with the clearing agent's own code.

1. migrate the target and refuse it unless it is empty (settlement.store.rebuild_store);
2. copy the partner registry (partners, their keys and revocations) from the live database:
   operators register them in PostgreSQL only, no topic carries them;
3. read the reference topics (tariffs with their deletions, locations, agreements) and
   cdr.submitted (or, `--from-archive`, the live database's raw_event), both in broker-time
   order;
4. clear cdr.submitted in batches through `pipeline.clearing.batch.process_batch`, the very
   function the clearing agent runs (decode → `decide_batch` → archive, book, reject, one
   outcome per record, in one transaction). Before a batch, every reference record the
   broker wrote at or before the batch's first record is stored with the functions the
   CLI and the OCPI receivers store with; a batch never spans a reference record.

The clock: the agent decides a batch at its wall-clock time; a rebuild decides each batch
at the broker time of its newest record (the earliest the live decision can have been),
so plausibility ("ends in the future") and key revocations are judged as of then.
Nothing is produced: the output events (cdr.rated, ledger.transactions, rejected) went out
when the live worker decided, and producing them again would deliver CDRs twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from pipeline.clearing.batch import Clearing, process_batch
from pipeline.clearing.events import EventWriter
from pipeline.clearing.refcache import ReferenceCache
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_hub_keyring, record_proof_keys
from pipeline.kafka.client import records_in_topic
from pipeline.rebuild.sources import (
    ReferenceEnvelope,
    ReferenceRecord,
    UnusableReference,
    in_time_order,
    moment_of,
    reference_records,
    submitted_in_time_order,
    when,
)
from pipeline.topics import Topic, topic_name
from schemas.events import AgreementPublished, LocationPublished, TariffDeleted, TariffPublished
from schemas.hub.party import PartyRef
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.store import rebuild_store, reference_store
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import Row, connect, connect_async
from settlement.store.migrate import apply_migrations

Progress = Callable[[int], None]


@dataclass(slots=True)
class RebuildSummary:
    """What a rebuild read, applied and decided."""

    source: str  # "topic" or "archive"
    records: int = 0
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    registry: dict[str, int] = field(default_factory=dict)
    reference: Counter[str] = field(default_factory=Counter)
    reference_refused: list[UnusableReference] = field(default_factory=list)
    events_not_produced: int = 0
    records_without_time: int = 0
    elapsed_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "batches": self.batches,
            "outcomes": dict(self.outcomes),
            "registry_copied": self.registry,
            "reference_applied": dict(self.reference),
            "reference_refused": [{"where": u.where, "why": u.why} for u in self.reference_refused],
            "events_not_produced": self.events_not_produced,
            "records_without_time": self.records_without_time,
            "elapsed_s": round(self.elapsed_s, 3),
        }


class _Clock:
    """The time `process_batch` decides a batch at: set before each batch."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment


async def count_source(settings: Settings, from_archive: bool) -> int:
    """How many cdr.submitted records the rebuild will read (for its progress bar)."""
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    if from_archive:
        with connect(role_url(settings, DbRole.READER)) as conn:
            return rebuild_store.archived_count(conn, topic)
    assert settings.kafka_bootstrap_servers is not None
    return await records_in_topic(settings.kafka_bootstrap_servers, topic)


async def rebuild(
    settings: Settings, target_url: str, from_archive: bool, progress: Progress
) -> RebuildSummary:
    """Steps 1 to 4 of the module docstring; `progress(n)` after each batch of n records."""
    started = time.monotonic()
    summary = RebuildSummary("archive" if from_archive else "topic")
    apply_migrations(target_url)
    with connect(target_url) as target:
        rebuild_store.assert_empty(target)
        with connect(role_url(settings, DbRole.READER)) as source:
            summary.registry = rebuild_store.copy_registry(source, target)
    references, summary.reference_refused = await reference_records(settings)
    pending = iter(references)
    writer = EventWriter(settings.topic_prefix, PartyRef.parse(settings.hub_party))
    clock = _Clock()

    async def discard(records: Sequence[object]) -> None:
        summary.events_not_produced += len(records)

    keys = record_proof_keys(load_hub_keyring(settings))
    limits = PlausibilityLimits(energy_kwh_max=settings.energy_kwh_max)
    clearing = Clearing(ReferenceCache(), limits, writer, discard, keys, now=clock.now)
    conn = await connect_async(target_url)
    await prepare(conn)
    try:
        with connect(target_url) as reference_conn:
            applier = _ReferenceApplier(reference_conn, pending, summary)
            records = _records(settings, from_archive)
            async for batch in cut_batches(records, applier, settings.clearing_batch_max):
                clock.moment = _batch_moment(batch, clock.moment, summary)
                result = await process_batch(conn, batch, clearing)
                summary.outcomes.update(result.outcomes)
                summary.records += len(batch)
                summary.batches += 1
                progress(len(batch))
            applier.apply_until(None)  # reference records newer than every CDR
    finally:
        await conn.close()
    summary.elapsed_s = time.monotonic() - started
    return summary


async def _records(settings: Settings, from_archive: bool) -> AsyncIterator[SubmittedRecord]:
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    if from_archive:
        with connect(role_url(settings, DbRole.READER)) as source:
            partitions = rebuild_store.archived_partitions(source, topic)
            for record in in_time_order(
                [rebuild_store.archived_records(source, topic, p) for p in partitions]
            ):
                yield record
        return
    assert settings.kafka_bootstrap_servers is not None
    async for record in submitted_in_time_order(settings.kafka_bootstrap_servers, topic):
        yield record


class PendingReferences(Protocol):
    """Reference records not applied yet, by broker time (`_ReferenceApplier`)."""

    def due(self, timestamp_ms: int) -> bool: ...
    def apply_until(self, timestamp_ms: int | None) -> None: ...


async def cut_batches(
    records: AsyncIterator[SubmittedRecord], applier: PendingReferences, batch_max: int
) -> AsyncIterator[list[SubmittedRecord]]:
    """Batches of at most `batch_max` records; a batch ends before a record that a pending
    reference record precedes, which is applied before that record's batch."""
    batch: list[SubmittedRecord] = []
    async for record in records:
        if applier.due(when(record)) and batch:
            yield batch
            batch = []
        applier.apply_until(when(record))
        batch.append(record)
        if len(batch) >= batch_max:
            yield batch
            batch = []
    if batch:
        yield batch


def _batch_moment(
    batch: Sequence[SubmittedRecord], previous: datetime, summary: RebuildSummary
) -> datetime:
    """The newest broker time in the batch (records without one keep the previous time)."""
    times = [r.timestamp_ms for r in batch if r.timestamp_ms is not None and r.timestamp_ms >= 0]
    summary.records_without_time += len(batch) - len(times)
    return moment_of(max(times)) if times else previous


class _ReferenceApplier:
    """Stores reference records into the target in broker-time order, each in its own
    transaction, with the functions the live system stores them with."""

    def __init__(
        self,
        conn: psycopg.Connection[Row],
        pending: Iterator[ReferenceRecord],
        summary: RebuildSummary,
    ) -> None:
        self.conn = conn
        self.pending = pending
        self.summary = summary
        self.next: ReferenceRecord | None = next(pending, None)

    def due(self, timestamp_ms: int) -> bool:
        """Whether a reference record precedes (or shares) this broker time."""
        return self.next is not None and self.next.timestamp_ms <= timestamp_ms

    def apply_until(self, timestamp_ms: int | None) -> None:
        """Apply every pending record up to `timestamp_ms` (None: all of them)."""
        while self.next is not None and (
            timestamp_ms is None or self.next.timestamp_ms <= timestamp_ms
        ):
            self._apply(self.next)
            self.next = next(self.pending, None)

    def _apply(self, record: ReferenceRecord) -> None:
        envelope = record.envelope
        try:
            with self.conn.transaction():
                _store(self.conn, envelope)
        except reference_store.ReferenceConflict as exc:
            where = f"{record.topic.value}@{record.timestamp_ms}"
            self.summary.reference_refused.append(UnusableReference(where, str(exc)[:300]))
            return
        self.summary.reference[envelope.type] += 1


def _store(conn: psycopg.Connection[Row], envelope: ReferenceEnvelope) -> None:
    if isinstance(envelope, TariffPublished):
        reference_store.store_tariff(conn, envelope.tariff, envelope.occurred_at)
    elif isinstance(envelope, TariffDeleted):
        notice = envelope.tariff_deletion
        cpo = PartyRef(country_code=notice.country_code, party_id=notice.party_id)
        reference_store.delete_tariff(conn, cpo, notice.id, notice.deleted_at)
    elif isinstance(envelope, LocationPublished):
        reference_store.store_location(conn, envelope.location)
    elif isinstance(envelope, AgreementPublished):
        reference_store.add_agreements(conn, [envelope.agreement])
    else:  # pragma: no cover - sources.reference_records keeps these four only
        raise AssertionError(f"not a reference envelope: {type(envelope).__name__}")
