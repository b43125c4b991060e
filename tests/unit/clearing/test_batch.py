"""One batch's decision (settlement.clearing.batch): one outcome per record, in order; the
batch's own bookings count for the records after them; one record's fault stays with that
record; a lost race is decided again with what PostgreSQL then holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from pipeline.clearing.events import EVENT_BYTES_MAX, EventWriter
from pipeline.hubkeys import HubSigner, record_proof_keys
from schemas.hub.agreement import Agreement
from schemas.hub.ledger import TransactionKind
from schemas.hub.party import CdrKey, PartyRef
from settlement.clearing.batch import Decision, decide_batch, ledger_keys, lost_bookings
from settlement.clearing.decide import clear
from settlement.clearing.decode import Decoded
from settlement.clearing.entry import Booking
from settlement.clearing.outcome import Booked, Duplicate, OutcomeKind, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.reasons import Reason, Stage
from settlement.clearing.trace import ChargeTrace, ReversalTrace
from settlement.keys import HubKey, HubKeyring
from settlement.store.clearing_rows import outcome_row
from settlement.store.clearing_store import SubmittedRecord
from tests.unit.clearing.factories import (
    NOW,
    TNM,
    FakeLedger,
    FakeReferences,
    agreement,
    cdr,
    decoded,
    tariff,
)

KEYRING = HubKeyring(HubKey.from_secret(bytes(range(32))))
KEYS = record_proof_keys(KEYRING)
TOPIC = "roamclear.cdr.submitted"
RECORD = SubmittedRecord(TOPIC, 3, 41, None, b"k", b"{}", tuple(HubSigner(KEYRING)(TOPIC, b"{}")))
LIMITS = PlausibilityLimits()
REFS = FakeReferences(tariffs=[tariff()], agreements=[agreement()])


class _BrokenReferences(FakeReferences):
    """References whose agreement lookup fails, as a bug in the hub's own code would."""

    def agreements(self, cpo: PartyRef, emsp: PartyRef | None) -> Sequence[Agreement]:
        raise KeyError("a bug")


def _credit_of(index: int) -> Decoded:
    original = cdr(index)
    return decoded(
        cdr(
            index,
            id=f"{original.id}-CR",
            credit=True,
            credit_reference_id=original.id,
            total_cost={"excl_vat": -original.total_cost.excl_vat},
        )
    )


def _decide(items: list[Decoded], held: Any = None, **kwargs: Any) -> list[Decision]:
    batch = [(RECORD, item) for item in items]
    return decide_batch(batch, NOW, LIMITS, KEYS, REFS, held or {}, **kwargs)


def _held(booked: Booked, **changes: Any) -> dict[CdrKey, Booking]:
    return {booked.transaction.cdr_key: replace(Booking.of(booked.entry), **changes)}


def test_a_fault_inside_the_decision_rejects_that_record_only() -> None:
    (booked,) = _decide([decoded(cdr(0))])
    assert isinstance(booked.outcome, Booked)
    batch = [(RECORD, decoded(cdr(1))), (RECORD, decoded(cdr(0)))]
    broken = decide_batch(batch, NOW, LIMITS, KEYS, _BrokenReferences(), _held(booked.outcome))
    outcome, proof = broken[0].outcome, broken[0].proof
    assert isinstance(outcome, Rejected) and proof == KEYRING.current.key_id
    assert (outcome.reason, outcome.stage) == (Reason.INTERNAL_ERROR, Stage.CLEAR)
    assert "KeyError" in outcome.message
    assert outcome.submitter == TNM and outcome.cdr_key == "NL*TNM*CDR-2026-0002"
    assert isinstance(broken[1].outcome, Duplicate)  # the next record is decided as ever


def test_a_credit_meets_its_charge_and_a_resend_its_first_in_the_same_batch() -> None:
    charge, again, credit, twice = _decide(
        [decoded(cdr(0)), decoded(cdr(0)), _credit_of(0), _credit_of(0)]
    )
    assert isinstance(charge.outcome, Booked) and charge.proof == KEYRING.current.key_id
    booked = charge.outcome
    transaction = booked.transaction
    assert again.outcome == Duplicate(transaction.cdr_key, transaction.transaction_id)
    assert isinstance(credit.outcome, Booked)
    reversal = credit.outcome.entry
    assert reversal.transaction.kind is TransactionKind.REVERSAL
    assert reversal.transaction.reverses == booked.transaction.transaction_id
    assert reversal.amounts == booked.entry.amounts.negated()
    assert reversal.settlement_period is booked.entry.settlement_period
    assert isinstance(booked.entry.trace, ChargeTrace)
    assert reversal.trace == ReversalTrace(transaction.transaction_id, booked.entry.trace)
    assert isinstance(twice.outcome, Duplicate)


def test_a_credit_of_a_charge_the_ledger_holds_mirrors_it() -> None:
    (charge,) = _decide([decoded(cdr(0))])
    assert isinstance(charge.outcome, Booked)
    (credit,) = _decide([_credit_of(0)], _held(charge.outcome))
    assert isinstance(credit.outcome, Booked)
    assert credit.outcome.entry.amounts == charge.outcome.entry.amounts.negated()


def test_a_stored_charge_without_its_record_cannot_be_reversed_and_says_so() -> None:
    (charge,) = _decide([decoded(cdr(0))])
    assert isinstance(charge.outcome, Booked)
    (credit,) = _decide([_credit_of(0)], _held(charge.outcome, trace=None))
    assert isinstance(credit.outcome, Rejected)
    assert credit.outcome.reason is Reason.INTERNAL_ERROR


def test_a_lost_race_ends_as_what_the_other_worker_booked_says() -> None:
    first, other, credit = _decide([decoded(cdr(0)), decoded(cdr(1)), _credit_of(1)])
    assert isinstance(first.outcome, Booked) and isinstance(other.outcome, Booked)
    assert isinstance(credit.outcome, Booked)
    inserted = {other.outcome.transaction.transaction_id}
    assert lost_bookings([first, other, credit], inserted) == [0, 2]

    # the same CDR booked by another worker: an exact duplicate
    (same,) = _decide([decoded(cdr(0))], _held(first.outcome), concurrent=True)
    assert same.outcome == Duplicate(
        first.outcome.transaction.cdr_key, first.outcome.transaction.transaction_id
    )
    # the same id with other content
    changed = clear(decoded(cdr(0, remark="other")), NOW, LIMITS, REFS, FakeLedger())
    assert isinstance(changed, Booked)
    (conflict,) = _decide([decoded(cdr(0))], _held(changed), concurrent=True)
    assert isinstance(conflict.outcome, Rejected)
    assert (conflict.outcome.reason, conflict.outcome.message) == (
        Reason.CDR_ID_CONFLICT,
        "CDR NL*TNM*CDR-2026-0001 was booked concurrently with other content",
    )
    # the original reversed by another credit meanwhile
    held = _held(other.outcome, reversed_by="another-credit")
    assert ledger_keys([_credit_of(1)]) == {
        CdrKey.of(_credit_of(1).cdr),
        other.outcome.transaction.cdr_key,
    }
    (late,) = _decide([_credit_of(1)], held, concurrent=True)
    assert isinstance(late.outcome, Rejected)
    assert (late.outcome.reason, late.outcome.message) == (
        Reason.CREDIT_ALREADY_APPLIED,
        "the CDR credited by NL*TNM*CDR-2026-0002-CR was reversed concurrently",
    )


def test_a_charge_record_reads_back_exactly_as_written() -> None:
    (charge,) = _decide([decoded(cdr(1))])
    assert isinstance(charge.outcome, Booked)
    trace = charge.outcome.entry.trace
    assert isinstance(trace, ChargeTrace)
    assert ChargeTrace.from_json(trace.as_json()) == trace
    reversal = ReversalTrace("id", trace).as_json()
    assert [line["excl_vat"] for line in reversal["vat_breakdown"]] == [
        str(-line.excl_vat) for line in trace.vat_breakdown
    ]


def test_a_rated_event_with_thousands_of_periods_stays_below_the_record_limit() -> None:
    booked = clear(decoded(cdr(1)), NOW, LIMITS, REFS, FakeLedger())
    assert isinstance(booked, Booked) and booked.rated is not None
    rated = msgspec.structs.replace(booked.rated, periods=booked.rated.periods * 4_000)
    many = replace(booked, rated=rated)
    writer = EventWriter("t", PartyRef.parse("NL*HUB"))
    rated_record = writer.booked(many, datetime(2026, 4, 1, tzinfo=UTC))[0]
    assert len(rated_record.value) <= EVENT_BYTES_MAX
    assert b'"periods":[]' in rated_record.value
    assert f'"periods_omitted":{len(many.rated.periods)}'.encode() in rated_record.value


def test_each_outcome_is_one_cdr_outcome_row_of_its_kind() -> None:
    charge, again = _decide([decoded(cdr(0)), decoded(cdr(0))])
    assert isinstance(charge.outcome, Booked) and isinstance(again.outcome, Duplicate)
    transaction_id = UUID(charge.outcome.transaction.transaction_id)
    assert outcome_row(7, charge.outcome, None, "k") == (7, "LEDGERED", transaction_id, None, "k")
    assert outcome_row(8, again.outcome, None, "k") == (8, "DUPLICATE", transaction_id, None, "k")
    rejected = Rejected(Reason.IMPLAUSIBLE, Stage.VALIDATE, "no")
    assert outcome_row(9, rejected, 3, None) == (9, "REJECTED", None, 3, None)
    assert [o.outcome_kind for o in (charge.outcome, again.outcome, rejected)] == list(OutcomeKind)
