"""One clearing batch: archive → decode → decide → book → emit, in one PostgreSQL transaction.

Order matters for exactly-once effect under at-least-once delivery:
1. decode every record (pure, outside the transaction; `decode_batch` yields to the event
   loop between slices, so the agent decodes the next batch while this one's PostgreSQL and
   broker round trips are in flight);
2. in one PostgreSQL transaction: archive the records (a redelivered record is already
   archived and is skipped), check each new one's proof of its submitter against the keys
   in force (settlement.clearing.proof), decide it against the ledger as it stands plus the
   batch's own bookings, write transactions, postings, rejections and one outcome per event
   (with the key that proved it);
3. produce the output events and wait for the broker's acks, still inside the transaction;
4. commit. Only then does the agent ack the batch, so Kafka offsets are committed after
   PostgreSQL. A crash anywhere before the commit replays the batch; after it, the replay
   finds every record archived and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from pipeline.clearing.events import EventWriter, OutputRecord
from pipeline.clearing.refcache import ReferenceCache
from pipeline.kafka.client import send_records
from schemas.hub.ledger import TransactionKind
from schemas.hub.party import CdrKey
from settlement.clearing.decide import Booking, clear
from settlement.clearing.decode import Decoded, decode
from settlement.clearing.outcome import Booked, Duplicate, Outcome, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.proof import PartnerKey, Proof, authenticate, claim_refused
from settlement.clearing.reasons import Reason, Stage
from settlement.store import cdr_sessions
from settlement.store import clearing_store as store
from settlement.store.clearing_rows import posting_rows, rejection_row, transaction_row
from settlement.store.db import Row
from settlement.store.reference_store import ReferenceSnapshot

Send = Callable[[Sequence[OutputRecord]], Awaitable[None]]
logger = logging.getLogger(__name__)

# Records decoded between two yields to the event loop: small enough that a waiting
# PostgreSQL or broker reply is picked up within a few milliseconds.
DECODE_SLICE = 50


@dataclass(slots=True)
class BatchResult:
    """What one batch did (counts by outcome; `skipped` were archived before)."""

    received: int = 0
    skipped: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class BatchLedger:
    """The ledger as PostgreSQL holds it plus this batch's own bookings (a LedgerView)."""

    def __init__(self, stored: dict[str, store.StoredBooking]) -> None:
        self.stored = stored
        self.added: dict[str, Booking] = {}

    def booking(self, cdr_key: str) -> Booking | None:
        if cdr_key in self.added:
            return self.added[cdr_key]
        found = self.stored.get(cdr_key)
        return None if found is None else found.booking

    def record(self, booked: Booked) -> None:
        transaction = booked.transaction
        key = str(transaction.cdr_key)
        self.added[key] = Booking(
            transaction.transaction_id,
            transaction.content_hash,
            transaction.kind,
            None,
            transaction.postings,
        )
        if transaction.kind is TransactionKind.REVERSAL:
            credited = CdrKey.credited_key(booked.cdr)
            original = self.booking(str(credited))
            assert original is not None
            self.added[str(credited)] = Booking(
                original.transaction_id,
                original.content_hash,
                original.kind,
                transaction.transaction_id,
                original.postings,
            )


def _keys(decoded: Sequence[Decoded | Rejected]) -> set[str]:
    keys: set[str] = set()
    for item in decoded:
        if isinstance(item, Decoded):
            keys.add(str(CdrKey.of(item.cdr)))
            credited = CdrKey.credited_key(item.cdr)
            if credited is not None:
                keys.add(str(credited))
    return keys


def _internal_error(
    stage: Stage, exc: Exception, record: store.SubmittedRecord, item: Decoded | None = None
) -> Rejected:
    """A fault of the hub's own on one record (bad input is a rejection by design, so this
    is a bug or an input nobody foresaw): that record is rejected, retryable once fixed,
    and logged with its traceback. Raised, it would fail the batch, stop the worker and come
    back with every redelivery, stopping clearing for every partner."""
    logger.exception("clearing failed on %s[%d]@%d", record.topic, record.partition, record.offset)
    key = None
    if item is not None:
        try:
            key = str(CdrKey.of(item.cdr))
        except ValueError:
            key = None
    return Rejected(
        Reason.INTERNAL_ERROR,
        stage,
        f"the hub failed on this record ({type(exc).__name__}: {exc})"[:1000],
        submitter=None if item is None else str(item.submitter),
        cdr_key=key,
    )


def _decode(record: store.SubmittedRecord) -> Decoded | Rejected:
    if record.unreadable is not None:
        return Rejected(
            Reason.UNREADABLE_RECORD,
            Stage.DECODE,
            f"the Kafka client cannot read record {record.topic}[{record.partition}]"
            f"@{record.offset}: {record.unreadable}"[:2000],
        )
    try:
        return decode(record.value)
    except Exception as exc:  # one record's fault must not fail the batch (see _internal_error)
        return _internal_error(Stage.DECODE, exc, record)


async def decode_batch(records: Sequence[store.SubmittedRecord]) -> list[Decoded | Rejected]:
    """Every record decoded, yielding to the event loop after each slice."""
    decoded: list[Decoded | Rejected] = []
    for start in range(0, len(records), DECODE_SLICE):
        decoded.extend(_decode(record) for record in records[start : start + DECODE_SLICE])
        await asyncio.sleep(0)
    return decoded


@dataclass(frozen=True, slots=True)
class Decision:
    """One new record's outcome, and the key that proved its submitter (None: no proof)."""

    record: store.SubmittedRecord
    archive_id: int
    outcome: Outcome
    proof: str | None


class _ProofKeys:
    """The keys proofs are checked against: the hub's, and the partners' registered ones."""

    def __init__(self, hub: Mapping[str, bytes], view: ReferenceSnapshot) -> None:
        self.hub = hub
        self.view = view

    def hub_key(self, key_id: str) -> bytes | None:
        return self.hub.get(key_id)

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return self.view.partner_key(key_id)


def _claimed_key(item: Decoded | Rejected) -> str | None:
    if isinstance(item, Rejected):
        return item.cdr_key
    try:
        return str(CdrKey.of(item.cdr))
    except ValueError:
        return None


def authenticated(
    record: store.SubmittedRecord,
    item: Decoded | Rejected,
    moment: datetime,
    keys: _ProofKeys,
) -> Proof | Rejected:
    """The record's proof of its submitter, or its `unauthenticated_submitter` rejection
    (naming the CDR it targets, never the claimed submitter as if it were proven)."""
    proof = authenticate(record.headers, record.topic, record.value, keys, moment)
    if isinstance(proof, Proof) and isinstance(item, Decoded):
        refused = claim_refused(proof, item.submitter)
        proof = proof if refused is None else refused
    if isinstance(proof, Rejected):
        return replace(proof, cdr_key=_claimed_key(item))
    return proof


def decide_one(
    record: store.SubmittedRecord,
    item: Decoded | Rejected,
    moment: datetime,
    clearing: Clearing,
    view: ReferenceSnapshot,
    books: BatchLedger,
) -> tuple[Outcome, str | None]:
    """One record's outcome and the key that proved it; the batch's own bookings are
    updated with it."""
    if record.unreadable is not None and isinstance(item, Rejected):
        return item, None  # its headers could not be read: there is no proof to check
    proof = authenticated(record, item, moment, _ProofKeys(clearing.hub_keys, view))
    if isinstance(proof, Rejected):
        return proof, None
    if isinstance(item, Rejected):
        # bad input from a proven partner is that partner's rejection
        proven = item if proof.party is None else replace(item, submitter=str(proof.party))
        return proven, proof.key_id
    try:
        outcome = clear(item, moment, clearing.limits, view, books)
    except Exception as exc:  # one record's fault must not fail the batch (see _internal_error)
        return _internal_error(Stage.CLEAR, exc, record, item), proof.key_id
    if isinstance(outcome, Booked):
        books.record(outcome)
    return outcome, proof.key_id


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
    writer = clearing.writer
    async with conn.transaction():
        view = await clearing.refs.refresh(conn)
        archived = await store.archive(conn, records)
        fresh = [
            (record, item, archived[record.position])
            for record, item in zip(records, decoded, strict=True)
            if record.position in archived
        ]
        result.skipped = len(records) - len(fresh)
        books = BatchLedger(await store.bookings(conn, _keys([i for _, i, _ in fresh])))
        moment = clearing.now()
        decisions = [
            Decision(record, archive_id, *decide_one(record, item, moment, clearing, view, books))
            for record, item, archive_id in fresh
        ]
        decisions = await _write(conn, decisions, books, moment)
        items = {archive_id: item for _, item, archive_id in fresh}
        await cdr_sessions.link(
            conn,
            cdr_sessions.link_rows((d.archive_id, items[d.archive_id], d.proof) for d in decisions),
        )
        output: list[OutputRecord] = []
        for decision in decisions:
            outcome = decision.outcome
            result.outcomes[type(outcome).__name__.lower()] += 1
            if isinstance(outcome, Booked):
                output.extend(writer.booked(outcome, moment))
            elif isinstance(outcome, Rejected):
                output.append(writer.rejected(outcome, decision.record, moment))
        await clearing.send(output)
    return result


async def _write(
    conn: psycopg.AsyncConnection[Row],
    decisions: list[Decision],
    books: BatchLedger,
    moment: datetime,
) -> list[Decision]:
    transactions: list[tuple[Any, ...]] = []
    postings: dict[str, list[tuple[Any, ...]]] = {}
    # what a reversal mirrors: stored originals, and originals booked earlier in this batch
    originals: dict[str, dict[str, Any]] = {k: b.row for k, b in books.stored.items()}
    for decision in decisions:
        outcome = decision.outcome
        if not isinstance(outcome, Booked):
            continue
        original = None
        if outcome.transaction.kind is TransactionKind.REVERSAL:
            original = originals[str(CdrKey.credited_key(outcome.cdr))]
        row = transaction_row(outcome, decision.archive_id, moment, original)
        transactions.append(row)
        summary = dict(zip(store.TRANSACTION_COLUMNS, row, strict=True))
        summary["rating"] = summary["rating"].obj
        originals[str(outcome.transaction.cdr_key)] = summary
        period = summary["rating"]["settlement_period"]
        postings[outcome.transaction.transaction_id] = posting_rows(outcome, period)
    inserted = await store.book(conn, transactions, postings)
    decisions = await _lost_races(conn, decisions, inserted)
    rejected = [d for d in decisions if isinstance(d.outcome, Rejected)]
    ids = await store.next_ids(conn, "rejection_rejection_id_seq", len(rejected))
    rejection_ids = dict(zip((d.archive_id for d in rejected), ids, strict=True))
    await store.copy_rows(
        conn,
        "rejection",
        store.REJECTION_COLUMNS,
        (
            rejection_row(rejection_ids[d.archive_id], d.archive_id, d.outcome, d.record.value)
            for d in rejected
            if isinstance(d.outcome, Rejected)
        ),
    )
    await store.copy_rows(
        conn, "cdr_outcome", store.OUTCOME_COLUMNS, _outcome_rows(decisions, rejection_ids)
    )
    return decisions


def _outcome_rows(
    decisions: Sequence[Decision], rejection_ids: dict[int, int]
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for decision in decisions:
        outcome, archive_id = decision.outcome, decision.archive_id
        row: tuple[Any, ...]
        if isinstance(outcome, Booked):
            row = (archive_id, "LEDGERED", UUID(outcome.transaction.transaction_id), None)
        elif isinstance(outcome, Duplicate):
            row = (archive_id, "DUPLICATE", UUID(outcome.transaction_id), None)
        else:
            row = (archive_id, "REJECTED", None, rejection_ids[archive_id])
        rows.append((*row, decision.proof))
    return rows


async def _lost_races(
    conn: psycopg.AsyncConnection[Row],
    decisions: list[Decision],
    inserted: set[str],
) -> list[Decision]:
    """Bookings PostgreSQL refused because another worker booked the key (or reversed the
    original) first: decided again against what is now committed."""
    lost = [
        d.outcome
        for d in decisions
        if isinstance(d.outcome, Booked) and d.outcome.transaction.transaction_id not in inserted
    ]
    if not lost:
        return decisions
    stored = await store.bookings(conn, {str(o.transaction.cdr_key) for o in lost})
    redecided = []
    for decision in decisions:
        outcome = decision.outcome
        if isinstance(outcome, Booked) and outcome.transaction.transaction_id not in inserted:
            existing = stored.get(str(outcome.transaction.cdr_key))
            redecided.append(replace(decision, outcome=_redecide(outcome, existing)))
        else:
            redecided.append(decision)
    return redecided


def _redecide(booked: Booked, existing: store.StoredBooking | None) -> Outcome:
    key = str(booked.transaction.cdr_key)
    if existing is not None and existing.booking.content_hash == booked.transaction.content_hash:
        return Duplicate(key, existing.booking.transaction_id)
    if existing is not None:
        return Rejected(
            Reason.CDR_ID_CONFLICT,
            Stage.DEDUPE,
            f"CDR {key} was booked concurrently with other content",
            (),
            booked.cpo,
            key,
        )
    return Rejected(
        Reason.CREDIT_ALREADY_APPLIED,
        Stage.DEDUPE,
        f"the CDR credited by {key} was reversed concurrently",
        (),
        booked.cpo,
        key,
    )


async def send_with(producer: Any, records: Sequence[OutputRecord]) -> None:
    """Produce and wait for every ack (the caller commits PostgreSQL only afterwards)."""
    futures = await send_records(producer, ((r.topic, r.key, r.value) for r in records))
    if futures:
        await asyncio.gather(*futures)
