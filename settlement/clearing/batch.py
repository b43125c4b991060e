"""One batch's clearing decision: every consumed record → exactly one outcome (invariant 2).

Pure, like the rest of settlement.clearing: the caller (the clearing agent, the bench, later
replay) supplies the decoded records, the time, the limits, the hub's proof keys, the
reference data and what the ledger already holds for the batch's CDR keys
(`ledger_keys`), and gets back one `Decision` per record, in order: its outcome (`Booked`
with its ledger entry, `Duplicate` or `Rejected`) and the key that proved its submitter.

Per record, in order:
1. authenticate: the record's proof of its submitter (settlement.clearing.proof); without
   one it is rejected `unauthenticated_submitter`, whatever else is wrong with it;
2. a record that did not decode is that proven partner's rejection;
3. decide the CDR (settlement.clearing.decide) against the ledger as it stands plus the
   batch's own bookings: a credit meets the charge it reverses in the same batch, a re-send
   later in the batch is an exact duplicate of the first;
4. a fault of the hub's own on one record (bad input is a rejection by design, so this is a
   bug or an input nobody foresaw) rejects that record `internal_error`, retryable once
   fixed, and logs it with its traceback: raised, it would fail the batch on every
   redelivery and stop clearing for every partner.

After a lost race (PostgreSQL refused some bookings because another worker booked the key,
or reversed the original, first) the caller decides those records again with what
PostgreSQL then holds and `concurrent=True`: each ends as the duplicate or the rejection
the other worker's booking makes it, and the rejection says it was concurrent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from schemas.hub.ledger import TransactionId, TransactionKind
from schemas.hub.party import CdrKey
from settlement.clearing.decide import clear
from settlement.clearing.decode import Decoded, decode
from settlement.clearing.entry import Booking
from settlement.clearing.outcome import Booked, ClaimedCdrKey, Outcome, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.proof import PartnerKey, Proof, authenticate, claim_refused
from settlement.clearing.reasons import Reason, Stage
from settlement.clearing.reference import ReferenceView

logger = logging.getLogger(__name__)


class Submitted(Protocol):
    """What the decision reads of a consumed cdr.submitted record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...
    @property
    def unreadable(self) -> str | None:
        """Why the Kafka client could not read the record (None: it could)."""
        ...


class ClearingReferences(ReferenceView, Protocol):
    """The reference data a batch is decided with, partners' registered keys included."""

    def partner_key(self, key_id: str) -> PartnerKey | None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """One record's outcome, and the key that proved its submitter (None: no proof)."""

    outcome: Outcome
    proof: str | None


def unreadable_rejection(record: Submitted) -> Rejected:
    """The rejection of a record the Kafka client could not read (`record.unreadable`)."""
    return Rejected(
        Reason.UNREADABLE_RECORD,
        Stage.DECODE,
        f"the Kafka client cannot read record {record.topic}[{record.partition}]"
        f"@{record.offset}: {record.unreadable}"[:2000],
    )


def decode_submitted(record: Submitted) -> Decoded | Rejected:
    """The record decoded, or its rejection (a record the Kafka client could not read, a
    fault of the decoder's own: see step 4 of the module docstring)."""
    if record.unreadable is not None:
        return unreadable_rejection(record)
    try:
        return decode(record.value)
    except Exception as exc:  # one record's fault must not fail the batch
        return _internal_error(Stage.DECODE, exc, record)


def ledger_keys(items: Iterable[Decoded | Rejected]) -> set[CdrKey]:
    """The CDR keys whose bookings deciding `items` needs: their own, and those they credit."""
    keys: set[CdrKey] = set()
    for item in items:
        if isinstance(item, Decoded):
            keys.add(CdrKey.of(item.cdr))
            credited = CdrKey.credited_key(item.cdr)
            if credited is not None:
                keys.add(credited)
    return keys


class _BatchLedger:
    """The ledger as the caller read it plus this batch's own bookings (a LedgerView).
    Keyed by CdrKey: the keys asked for and booked come from `CdrKey.of`'s cache, so a
    look-up mostly finds the very object and never compares two models."""

    def __init__(self, held: Mapping[CdrKey, Booking]) -> None:
        self.bookings = dict(held)

    def booking(self, cdr_key: CdrKey) -> Booking | None:
        return self.bookings.get(cdr_key)

    def record(self, booked: Booked) -> None:
        transaction = booked.transaction
        self.bookings[transaction.cdr_key] = Booking.of(booked.entry)
        if transaction.kind is TransactionKind.REVERSAL:
            credited = CdrKey.credited_key(booked.cdr)
            assert credited is not None, "a reversal books a credit CDR"
            original = self.bookings[credited]
            self.bookings[credited] = replace(original, reversed_by=transaction.transaction_id)


class _ProofKeys:
    """The keys proofs are checked against: the hub's, and the partners' registered ones."""

    def __init__(self, hub: Mapping[str, bytes], refs: ClearingReferences) -> None:
        self.hub = hub
        self.refs = refs

    def hub_key(self, key_id: str) -> bytes | None:
        return self.hub.get(key_id)

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return self.refs.partner_key(key_id)


def decide_batch(
    batch: Sequence[tuple[Submitted, Decoded | Rejected]],
    now: datetime,
    limits: PlausibilityLimits,
    hub_keys: Mapping[str, bytes],
    refs: ClearingReferences,
    held: Mapping[CdrKey, Booking],
    *,
    concurrent: bool = False,
) -> list[Decision]:
    """One decision per (record, decoded record), in order. `held`: what the ledger holds
    for the batch's `ledger_keys` (a key it lacks is not booked); `hub_keys`: hub key id →
    its record-proof key (current and previous); `concurrent`: see the module docstring."""
    books = _BatchLedger(held)
    keys = _ProofKeys(hub_keys, refs)
    decisions = []
    for record, item in batch:
        decision = _decide(record, item, now, limits, keys, refs, books, concurrent)
        if isinstance(decision.outcome, Booked):
            books.record(decision.outcome)
        decisions.append(decision)
    return decisions


def ledger_after(
    held: Mapping[CdrKey, Booking], decisions: Sequence[Decision]
) -> dict[CdrKey, Booking]:
    """What the ledger holds for `held`'s keys and the decisions' own keys once their
    bookings are made, as `decide_batch` saw it: a replay carries it from one batch to the
    next instead of writing the bookings."""
    books = _BatchLedger(held)
    for decision in decisions:
        if isinstance(decision.outcome, Booked):
            books.record(decision.outcome)
    return books.bookings


def lost_bookings(decisions: Sequence[Decision], inserted: set[TransactionId]) -> list[int]:
    """Positions of the bookings PostgreSQL refused (their transaction id not `inserted`)."""
    return [
        index
        for index, decision in enumerate(decisions)
        if isinstance(decision.outcome, Booked)
        and decision.outcome.transaction.transaction_id not in inserted
    ]


def _decide(
    record: Submitted,
    item: Decoded | Rejected,
    now: datetime,
    limits: PlausibilityLimits,
    keys: _ProofKeys,
    refs: ClearingReferences,
    books: _BatchLedger,
    concurrent: bool,
) -> Decision:
    if record.unreadable is not None and isinstance(item, Rejected):
        return Decision(item, None)  # its headers could not be read: no proof to check
    proof = _authenticated(record, item, now, keys)
    if isinstance(proof, Rejected):
        return Decision(proof, None)
    if isinstance(item, Rejected):
        # bad input from a proven partner is that partner's rejection
        proven = item if proof.party is None else replace(item, submitter=proof.party)
        return Decision(proven, proof.key_id)
    try:
        outcome = clear(item, now, limits, refs, books, concurrent=concurrent)
    except Exception as exc:  # one record's fault must not fail the batch
        return Decision(_internal_error(Stage.CLEAR, exc, record, item), proof.key_id)
    return Decision(outcome, proof.key_id)


def _claimed_key(item: Decoded | Rejected) -> ClaimedCdrKey | None:
    if isinstance(item, Rejected):
        return item.cdr_key
    return _key_of(item)


def _key_of(item: Decoded) -> ClaimedCdrKey | None:
    """The key a decoded CDR names, None when its codes do not make a valid key."""
    try:
        return ClaimedCdrKey(str(CdrKey.of(item.cdr)))
    except ValueError:
        return None


def _authenticated(
    record: Submitted, item: Decoded | Rejected, now: datetime, keys: _ProofKeys
) -> Proof | Rejected:
    """The record's proof of its submitter, or its `unauthenticated_submitter` rejection
    (naming the CDR it targets, never the claimed submitter as if it were proven)."""
    proof = authenticate(record.headers, record.topic, record.value, keys, now)
    if isinstance(proof, Proof) and isinstance(item, Decoded):
        refused = claim_refused(proof, item.submitter)
        proof = proof if refused is None else refused
    if isinstance(proof, Rejected):
        return replace(proof, cdr_key=_claimed_key(item))
    return proof


def _internal_error(
    stage: Stage, exc: Exception, record: Submitted, item: Decoded | None = None
) -> Rejected:
    """Step 4 of the module docstring: the record's `internal_error` rejection, logged."""
    logger.exception("clearing failed on %s[%d]@%d", record.topic, record.partition, record.offset)
    return Rejected(
        Reason.INTERNAL_ERROR,
        stage,
        f"the hub failed on this record ({type(exc).__name__}: {exc})"[:1000],
        submitter=None if item is None else item.submitter,
        cdr_key=None if item is None else _key_of(item),
    )
