"""Money invariants of allocation and booking, as properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.hub.agreement import Agreement, FeePayer, HubFee, RoundingMode, RoundingPolicy
from schemas.hub.ledger import Side, Transaction
from schemas.hub.party import CdrKey, PartyRef
from settlement import ledger
from settlement.allocation import allocate

CPO = PartyRef(country_code="NL", party_id="TNM")
EMSP = PartyRef(country_code="DE", party_id="EMP")
KEY = CdrKey(party=CPO, cdr_id="CDR1")
HASH = "ab" * 32

amounts = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False)
percents = st.none() | st.decimals(min_value=0, max_value=100, places=2)
small = st.none() | st.decimals(min_value=0, max_value=50, places=4)


@st.composite
def agreements(draw: st.DrawFn) -> Agreement:
    decimals = draw(st.integers(0, 4))
    exponent = Decimal(1).scaleb(-decimals)
    minimum, maximum, fixed = (draw(small), draw(small), draw(small))
    minimum, maximum, fixed = (
        None if v is None else v.quantize(exponent) for v in (minimum, maximum, fixed)
    )
    if minimum is not None and maximum is not None and maximum < minimum:
        minimum, maximum = maximum, minimum
    return Agreement(
        agreement_id="A",
        version=1,
        cpo=CPO,
        currency="EUR",
        valid_from=datetime(2025, 1, 1, tzinfo=UTC),
        rounding=RoundingPolicy(mode=draw(st.sampled_from(list(RoundingMode))), decimals=decimals),
        hub_fee=HubFee(percent=draw(percents), fixed=fixed, minimum=minimum, maximum=maximum),
        fee_payer=draw(st.sampled_from(list(FeePayer))),
    )


def allocation_adds_up(emsp_owes: Decimal, cpo_owed: Decimal, fee: Decimal) -> bool:
    """Allocation never creates or destroys money."""
    return emsp_owes == cpo_owed + fee


@settings(max_examples=300, deadline=None)
@given(excl=amounts, vat=st.sampled_from(["0", "7", "19", "21"]), agreement=agreements())
def test_allocation_never_creates_or_destroys_money(
    excl: Decimal, vat: str, agreement: Agreement
) -> None:
    incl = excl * (1 + Decimal(vat) / 100)
    allocation = allocate(excl, incl, agreement)
    assert allocation_adds_up(allocation.emsp_owes, allocation.cpo_owed, allocation.fee)
    assert allocation.fee >= 0
    if agreement.hub_fee.maximum is not None:
        assert allocation.fee <= agreement.hub_fee.maximum
    if agreement.hub_fee.minimum is not None:
        assert allocation.fee >= agreement.hub_fee.minimum


@settings(max_examples=300, deadline=None)
@given(excl=amounts, agreement=agreements())
def test_every_charge_and_its_reversal_balance_and_net_to_zero(
    excl: Decimal, agreement: Agreement
) -> None:
    allocation = allocate(excl, excl, agreement)
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    charge = ledger.charge(KEY, HASH, CPO, EMSP, allocation, "EUR", moment)
    assert ledger.is_balanced(charge)
    assert all(p.amount > 0 for p in charge.postings)
    reversal = ledger.reversal(
        CdrKey(party=CPO, cdr_id="CDR1-CR"), HASH, charge.transaction_id, charge.postings, moment
    )
    assert ledger.is_balanced(reversal)
    for built in (charge, reversal):  # built without validation: exactly what validation makes
        validated = Transaction.model_validate(built.model_dump(exclude_unset=True))
        assert validated == built
        assert validated.model_fields_set == built.model_fields_set
        assert validated.model_dump_json() == built.model_dump_json()
    net: dict[str, Decimal] = {}
    for posting in (*charge.postings, *reversal.postings):
        sign = 1 if posting.side is Side.CREDIT else -1
        net[posting.account] = net.get(posting.account, Decimal(0)) + sign * posting.amount
    assert set(net.values()) <= {Decimal(0)}


def test_transaction_ids_are_deterministic() -> None:
    allocation = allocate(
        Decimal("10"),
        Decimal("12.1"),
        Agreement(
            agreement_id="A",
            version=1,
            cpo=CPO,
            currency="EUR",
            valid_from=datetime(2025, 1, 1, tzinfo=UTC),
        ),
    )
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    first = ledger.charge(KEY, HASH, CPO, EMSP, allocation, "EUR", moment)
    again = ledger.charge(KEY, HASH, CPO, EMSP, allocation, "EUR", moment)
    other = ledger.charge(KEY, "cd" * 32, CPO, EMSP, allocation, "EUR", moment)
    assert first.transaction_id == again.transaction_id != other.transaction_id
