"""The clearing decision: every submitted CDR ends in exactly one outcome, for a reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from schemas.hub.ledger import Side, TransactionKind
from schemas.hub.party import CdrKey, PartnerRole
from schemas.ocpi.cdr import Cdr
from settlement.clearing.decide import clear
from settlement.clearing.entry import Booking
from settlement.clearing.outcome import Booked, Duplicate, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.reasons import Reason, Stage
from settlement.clearing.reference import TariffLifecycleEvent, was_deleted
from settlement.ledger import is_balanced
from tests.unit.clearing.factories import (
    EVB,
    NOW,
    FakeLedger,
    FakeReferences,
    agreement,
    cdr,
    cdr_data,
    decoded,
    tariff,
)

LIMITS = PlausibilityLimits()


def refs(**kwargs: object) -> FakeReferences:
    kwargs.setdefault("tariffs", [tariff()])
    kwargs.setdefault("agreements", [agreement()])
    return FakeReferences(**kwargs)  # type: ignore[arg-type]


def test_a_valid_cdr_books_a_balanced_charge() -> None:
    outcome = clear(decoded(cdr(1)), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(outcome, Booked)
    transaction = outcome.transaction
    assert transaction.kind is TransactionKind.CHARGE
    assert is_balanced(transaction)
    postings = {(p.account, p.side): p.amount for p in transaction.postings}
    # 11.775 excl. VAT -> fee 1.5 % = 0.176625 -> 0.1766 (half-up, 4 decimals), paid by the CPO
    assert postings == {
        ("partner:BE*EVB", Side.DEBIT): Decimal("14.2478"),
        ("partner:NL*TNM", Side.CREDIT): Decimal("14.0712"),
        ("hub:fees", Side.CREDIT): Decimal("0.1766"),
    }
    assert outcome.time_zone == "Europe/Amsterdam"
    assert outcome.rated is not None and outcome.rated.tariff.id == "AC-STANDARD"


def test_fee_paid_by_the_emsp_is_added_to_what_it_owes() -> None:
    outcome = clear(
        decoded(cdr(1)), NOW, LIMITS, refs(agreements=[agreement(fee_payer="EMSP")]), FakeLedger()
    )
    assert isinstance(outcome, Booked)
    postings = {(p.account, p.side): p.amount for p in outcome.transaction.postings}
    assert postings[("partner:BE*EVB", Side.DEBIT)] == Decimal("14.4244")
    assert postings[("partner:NL*TNM", Side.CREDIT)] == Decimal("14.2478")


def test_the_same_cdr_again_is_an_exact_duplicate() -> None:
    first = clear(decoded(cdr(0)), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(first, Booked)
    t = first.transaction
    books = FakeLedger({str(t.cdr_key): Booking.of(first.entry)})
    again = clear(decoded(cdr(0)), NOW, LIMITS, refs(), books)
    assert again == Duplicate(cdr_key=t.cdr_key, transaction_id=t.transaction_id)


def test_the_same_id_with_other_content_is_a_conflict() -> None:
    first = clear(decoded(cdr(0)), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(first, Booked)
    t = first.transaction
    books = FakeLedger({str(t.cdr_key): Booking.of(first.entry)})
    changed = cdr(0, remark="corrected")
    outcome = clear(decoded(changed), NOW, LIMITS, refs(), books)
    assert isinstance(outcome, Rejected)
    assert outcome.reason is Reason.CDR_ID_CONFLICT and outcome.stage is Stage.DEDUPE


def _credit_of(index: int) -> object:
    original = cdr(index)
    return cdr(
        index,
        id=f"{original.id}-CR",
        credit=True,
        credit_reference_id=original.id,
        total_cost={"excl_vat": -original.total_cost.excl_vat},
    )


def test_a_credit_reverses_the_original_exactly() -> None:
    first = clear(decoded(cdr(0)), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(first, Booked)
    t = first.transaction
    books = FakeLedger({str(t.cdr_key): Booking.of(first.entry)})
    outcome = clear(decoded(_credit_of(0)), NOW, LIMITS, refs(), books)  # type: ignore[arg-type]
    assert isinstance(outcome, Booked)
    reversal = outcome.transaction
    assert reversal.kind is TransactionKind.REVERSAL and reversal.reverses == t.transaction_id
    mirrored = {(p.account, p.side.value, p.amount) for p in t.postings}
    flipped = {
        (p.account, "DEBIT" if p.side is Side.CREDIT else "CREDIT", p.amount)
        for p in reversal.postings
    }
    assert mirrored == flipped


def test_a_credit_of_an_unknown_cdr_is_rejected() -> None:
    outcome = clear(decoded(_credit_of(0)), NOW, LIMITS, refs(), FakeLedger())  # type: ignore[arg-type]
    assert isinstance(outcome, Rejected)
    assert outcome.reason is Reason.CREDIT_REFERENCE_UNKNOWN


def test_crediting_twice_is_rejected() -> None:
    first = clear(decoded(cdr(0)), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(first, Booked)
    t = first.transaction
    books = FakeLedger(
        {str(t.cdr_key): replace(Booking.of(first.entry), reversed_by="reversal-id")}
    )
    outcome = clear(decoded(_credit_of(0)), NOW, LIMITS, refs(), books)  # type: ignore[arg-type]
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.CREDIT_ALREADY_APPLIED


def test_no_registered_tariff_is_rejected_unless_the_agreement_allows_the_embedded_one() -> None:
    without = clear(decoded(cdr(0)), NOW, LIMITS, refs(tariffs=[]), FakeLedger())
    assert isinstance(without, Rejected) and without.reason is Reason.NO_TARIFF
    allowed = refs(tariffs=[], agreements=[agreement(allow_embedded_tariff=True)])
    assert isinstance(clear(decoded(cdr(0)), NOW, LIMITS, allowed, FakeLedger()), Booked)


def test_no_agreement_is_rejected() -> None:
    outcome = clear(decoded(cdr(0)), NOW, LIMITS, refs(agreements=[]), FakeLedger())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.NO_AGREEMENT


def test_a_pair_agreement_wins_over_the_cpo_default() -> None:
    pair = agreement(
        agreement_id="TNM-EVB",
        emsp={"country_code": "BE", "party_id": "EVB"},
        hub_fee={"fixed": "0.25"},
    )
    outcome = clear(
        decoded(cdr(1)), NOW, LIMITS, refs(agreements=[agreement(), pair]), FakeLedger()
    )
    assert isinstance(outcome, Booked) and outcome.agreement is not None
    assert outcome.agreement.agreement_id == "TNM-EVB"
    assert outcome.allocation is not None and outcome.allocation.fee == Decimal("0.2500")
    assert outcome.emsp == EVB


def test_declared_totals_beyond_tolerance_are_a_price_discrepancy() -> None:
    off = cdr(0, total_cost={"excl_vat": "7.50", "incl_vat": "9.0750"})
    outcome = clear(decoded(off), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.PRICE_DISCREPANCY


def test_cpo_declared_basis_books_the_declared_amount_within_tolerance() -> None:
    near = cdr(0, total_cost={"excl_vat": "7.2550", "incl_vat": "8.7780"})
    basis = refs(agreements=[agreement(settles="CPO_DECLARED", tolerance="0.01")])
    outcome = clear(decoded(near), NOW, LIMITS, basis, FakeLedger())
    assert isinstance(outcome, Booked) and outcome.allocation is not None
    assert outcome.allocation.amount_incl_vat == Decimal("8.7780")


def test_a_submitter_that_does_not_own_the_cdr_is_rejected() -> None:
    outcome = clear(decoded(cdr(0), submitter=EVB), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.NOT_OWNER


def test_every_plausibility_violation_is_reported_at_once() -> None:
    data_cdr = cdr(0, total_energy="5000", end_date_time="2027-01-01T00:00:00Z")
    outcome = clear(decoded(data_cdr), NOW, LIMITS, refs(), FakeLedger())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.IMPLAUSIBLE
    codes = {v.code for v in outcome.violations}
    assert {"future", "energy_ceiling", "totals_inconsistent"} <= codes
    assert all(v.path for v in outcome.violations)


def test_unregistered_emsp_is_rejected() -> None:
    outcome = clear(
        decoded(cdr(0)), NOW, LIMITS, refs(roles={"NL*TNM": PartnerRole.CPO}), FakeLedger()
    )
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.UNKNOWN_EMSP


def test_a_partner_acts_only_in_the_role_it_is_registered_as() -> None:
    def outcome(cpo: PartnerRole, emsp: PartnerRole) -> object:
        roles = {"NL*TNM": cpo, "DE*EMP": emsp, "BE*EVB": emsp}
        return clear(decoded(cdr(0)), NOW, LIMITS, refs(roles=roles), FakeLedger())

    assert isinstance(outcome(PartnerRole.BOTH, PartnerRole.BOTH), Booked)
    as_emsp = outcome(PartnerRole.EMSP, PartnerRole.EMSP)
    assert isinstance(as_emsp, Rejected) and as_emsp.reason is Reason.UNKNOWN_SUBMITTER
    as_cpo = outcome(PartnerRole.CPO, PartnerRole.CPO)
    assert isinstance(as_cpo, Rejected) and as_cpo.reason is Reason.UNKNOWN_EMSP


def test_a_missing_time_zone_is_a_rating_rejection_not_a_guess() -> None:
    foreign = cdr(
        0, cdr_location={**cdr(0).cdr_location.model_dump(), "country": "USA", "id": "LOC-X"}
    )
    outcome = clear(decoded(foreign), NOW, LIMITS, refs(zones={}), FakeLedger())
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "missing_time_zone" and outcome.stage is Stage.RATE


def test_tariff_version_in_force_at_session_start_prices_it() -> None:
    old = tariff()
    newer = old.model_copy(
        update={"last_updated": NOW, "elements": old.elements[2:]}  # published after the session
    )
    outcome = clear(decoded(cdr(0)), NOW, LIMITS, refs(tariffs=[old, newer]), FakeLedger())
    assert isinstance(outcome, Booked) and outcome.rated is not None
    assert outcome.rated.tariff.last_updated == old.last_updated


def test_a_deleted_tariff_prices_sessions_that_started_before_its_delete_only() -> None:
    start = cdr(0).start_date_time
    deleted_after = {"AC-STANDARD": [TariffLifecycleEvent(start + timedelta(hours=1), True)]}
    before = clear(decoded(cdr(0)), NOW, LIMITS, refs(lifecycle=deleted_after), FakeLedger())
    assert isinstance(before, Booked)

    deleted_before = {"AC-STANDARD": [TariffLifecycleEvent(start, True)]}
    after = clear(decoded(cdr(0)), NOW, LIMITS, refs(lifecycle=deleted_before), FakeLedger())
    assert isinstance(after, Rejected) and after.reason is Reason.NO_TARIFF

    restored = {
        "AC-STANDARD": [
            TariffLifecycleEvent(start - timedelta(days=2), True),
            TariffLifecycleEvent(start - timedelta(days=1), False),
        ]
    }
    again = clear(decoded(cdr(0)), NOW, LIMITS, refs(lifecycle=restored), FakeLedger())
    assert isinstance(again, Booked)


def test_was_deleted_reads_the_last_event_by_then() -> None:
    moment = NOW
    events = [
        TariffLifecycleEvent(moment - timedelta(hours=2), True),
        TariffLifecycleEvent(moment - timedelta(hours=1), False),
        TariffLifecycleEvent(moment, True),
    ]
    assert not was_deleted((), moment)
    assert was_deleted(events, moment - timedelta(hours=2))
    assert not was_deleted(events, moment - timedelta(minutes=1))
    assert was_deleted(events, moment)  # a session starting at the DELETE finds none
    assert not was_deleted(events, moment - timedelta(hours=3))


def test_a_cdr_the_engine_cannot_price_is_rejected_not_raised() -> None:
    # a session in year 1 has no local time in New York (before year 1): OverflowError in
    # the engine, which used to escape `clear` and stop the worker on every redelivery
    data = cdr_data(1)
    data["start_date_time"] = data["charging_periods"][0]["start_date_time"] = (
        "0001-01-01T00:00:00Z"
    )
    data["tariffs"] = [tariff().model_dump(mode="json", exclude_none=True)]
    value = Cdr.model_validate(data)
    references = refs(
        tariffs=[],
        agreements=[agreement(allow_embedded_tariff=True)],
        zones={value.cdr_location.id: "America/New_York"},
    )
    outcome = clear(decoded(value), NOW, LIMITS, references, FakeLedger())
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.stage) == (Reason.RATING_FAILED, Stage.RATE)
    assert "OverflowError" in outcome.message and outcome.cdr_key == str(CdrKey.of(value))


def test_an_amount_beyond_the_ledger_columns_is_rejected_before_booking() -> None:
    # OCPI allows 20 digits, the ledger's numeric(20, 4) 16 before the point: booked, such
    # a CDR made PostgreSQL refuse its whole batch on every redelivery
    huge = {"excl_vat": "20000000000000000", "incl_vat": "24200000000000000"}
    value = cdr(1, total_cost=huge)
    lenient = agreement(settles="CPO_DECLARED", tolerance="1E+17")
    outcome = clear(decoded(value), NOW, LIMITS, refs(agreements=[lenient]), FakeLedger())
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.stage) == (Reason.IMPLAUSIBLE, Stage.ALLOCATE)
    assert "24200000000000000" in outcome.message
