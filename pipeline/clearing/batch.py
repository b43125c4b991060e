"""One clearing batch's I/O: decode → decide (settlement.clearing.batch) → write → send, in
one PostgreSQL transaction.

The decision is the core's; this shell reads what it needs and writes what it decided.
Order matters for exactly-once effect under at-least-once delivery:
1. decode every record (pure, outside the transaction; `decode_batch` yields to the event
   loop between slices, so the agent decodes the next batch while this one's PostgreSQL and
   broker round trips are in flight);
2. in one PostgreSQL transaction: archive the records (a redelivered record is already
   archived and is skipped), read the reference data and what the ledger holds for the new
   records' keys, decide them (`decide_batch`), write transactions, postings, rejections
   and one outcome per event (with the key that proved it). Bookings PostgreSQL refuses
   (another worker booked the key first) are decided again with what it then holds;
3. produce the output events and wait for the broker's acks, still inside the transaction;
4. commit. Only then does the agent ack the batch, so Kafka offsets are committed after
   PostgreSQL. A crash anywhere before the commit replays the batch; after it, the replay
   finds every record archived and changes nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from pipeline.clearing.events import EventWriter, OutputRecord
from pipeline.clearing.refcache import ReferenceCache
from pipeline.kafka.client import send_records
from schemas.hub.ledger import TransactionId
from settlement.clearing.batch import (
    Decision,
    decide_batch,
    decode_submitted,
    ledger_keys,
    lost_bookings,
)
from settlement.clearing.decode import Decoded
from settlement.clearing.outcome import Booked, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.store import cdr_sessions
from settlement.store import clearing_store as store
from settlement.store.clearing_rows import (
    outcome_row,
    posting_rows,
    rejection_row,
    transaction_row,
)
from settlement.store.db import Row

Send = Callable[[Sequence[OutputRecord]], Awaitable[None]]

# Records decoded between two yields to the event loop: small enough that a waiting
# PostgreSQL or broker reply is picked up within a few milliseconds.
DECODE_SLICE = 50


@dataclass(slots=True)
class BatchResult:
    """What one batch did (counts by outcome and by rejection reason; `skipped` were
    archived before)."""

    received: int = 0
    skipped: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


async def decode_batch(records: Sequence[store.SubmittedRecord]) -> list[Decoded | Rejected]:
    """Every record decoded, yielding to the event loop after each slice."""
    decoded: list[Decoded | Rejected] = []
    for start in range(0, len(records), DECODE_SLICE):
        decoded.extend(decode_submitted(r) for r in records[start : start + DECODE_SLICE])
        await asyncio.sleep(0)
    return decoded


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Clearing:
    """What every batch of one agent is cleared with."""

    refs: ReferenceCache
    limits: PlausibilityLimits
    writer: EventWriter
    send: Send
    hub_keys: Mapping[str, bytes]  # hub key id -> its record-proof key (current and previous)
    now: Callable[[], datetime] = _utc_now


@dataclass(frozen=True, slots=True)
class _Fresh:
    """A record archived by this batch (not a redelivery), decoded."""

    record: store.SubmittedRecord
    item: Decoded | Rejected
    archive_id: int


async def process_batch(
    conn: psycopg.AsyncConnection[Row],
    records: Sequence[store.SubmittedRecord],
    clearing: Clearing,
) -> BatchResult:
    decoded = await decode_batch(records)
    return await commit_batch(conn, records, decoded, clearing)


async def commit_batch(
    conn: psycopg.AsyncConnection[Row],
    records: Sequence[store.SubmittedRecord],
    decoded: Sequence[Decoded | Rejected],
    clearing: Clearing,
) -> BatchResult:
    """Steps 2 to 4 of the module docstring for records already decoded."""
    result = BatchResult(received=len(records))
    async with conn.transaction():
        view = await clearing.refs.refresh(conn)
        archived = await store.archive(conn, records)
        fresh = [
            _Fresh(record, item, archived[record.position])
            for record, item in zip(records, decoded, strict=True)
            if record.position in archived
        ]
        result.skipped = len(records) - len(fresh)
        held = await store.bookings(conn, ledger_keys(f.item for f in fresh))
        moment = clearing.now()
        batch = [(f.record, f.item) for f in fresh]
        decisions = decide_batch(batch, moment, clearing.limits, clearing.hub_keys, view, held)
        inserted = await _book(conn, fresh, decisions, moment)
        lost = lost_bookings(decisions, inserted)
        if lost:
            # another worker booked these keys (or reversed the original) first: decided
            # again with what PostgreSQL now holds
            again = [batch[i] for i in lost]
            held = await store.bookings(conn, ledger_keys(item for _, item in again))
            redecided = decide_batch(
                again, moment, clearing.limits, clearing.hub_keys, view, held, concurrent=True
            )
            for i, decision in zip(lost, redecided, strict=True):
                assert not isinstance(decision.outcome, Booked), "a lost booking never books"
                decisions[i] = decision
        await _write_outcomes(conn, fresh, decisions)
        await cdr_sessions.link(
            conn,
            cdr_sessions.link_rows(
                (f.archive_id, f.item, d.proof) for f, d in zip(fresh, decisions, strict=True)
            ),
        )
        output: list[OutputRecord] = []
        for f, decision in zip(fresh, decisions, strict=True):
            outcome = decision.outcome
            result.outcomes[type(outcome).__name__.lower()] += 1
            if isinstance(outcome, Booked):
                output.extend(clearing.writer.booked(outcome, moment))
            elif isinstance(outcome, Rejected):
                result.reasons[str(outcome.reason)] += 1
                output.append(clearing.writer.rejected(outcome, f.record, moment))
        await clearing.send(output)
    return result


async def _book(
    conn: psycopg.AsyncConnection[Row],
    fresh: Sequence[_Fresh],
    decisions: Sequence[Decision],
    moment: datetime,
) -> set[TransactionId]:
    """Book every booked decision; returns the transaction ids PostgreSQL inserted."""
    transactions: list[tuple[Any, ...]] = []
    postings: dict[TransactionId, list[tuple[Any, ...]]] = {}
    for f, decision in zip(fresh, decisions, strict=True):
        outcome = decision.outcome
        if isinstance(outcome, Booked):
            transactions.append(transaction_row(outcome, f.archive_id, moment))
            postings[outcome.transaction.transaction_id] = posting_rows(outcome)
    return await store.book(conn, transactions, postings)


async def _write_outcomes(
    conn: psycopg.AsyncConnection[Row], fresh: Sequence[_Fresh], decisions: Sequence[Decision]
) -> None:
    """The rejections, and one cdr_outcome row per record."""
    rejected = [
        (f, d.outcome)
        for f, d in zip(fresh, decisions, strict=True)
        if isinstance(d.outcome, Rejected)
    ]
    ids = await store.next_ids(conn, "rejection_rejection_id_seq", len(rejected))
    rejection_ids = dict(zip((f.archive_id for f, _ in rejected), ids, strict=True))
    await store.copy_rows(
        conn,
        "rejection",
        store.REJECTION_COLUMNS,
        (
            rejection_row(rejection_ids[f.archive_id], f.archive_id, outcome, f.record.value)
            for f, outcome in rejected
        ),
    )
    rows = [
        outcome_row(f.archive_id, d.outcome, rejection_ids.get(f.archive_id), d.proof)
        for f, d in zip(fresh, decisions, strict=True)
    ]
    await store.copy_rows(conn, "cdr_outcome", store.OUTCOME_COLUMNS, rows)


async def send_with(producer: Any, records: Sequence[OutputRecord]) -> None:
    """Produce and wait for every ack (the caller commits PostgreSQL only afterwards)."""
    futures = await send_records(producer, ((r.topic, r.key, r.value) for r in records))
    if futures:
        await asyncio.gather(*futures)
