"""Revenue-share allocation: who owes whom for one priced CDR under a roaming agreement.

The hub is the central counterparty. For a CDR settled at amount A (incl. VAT where the
tariff states VAT) with hub fee F (a percentage of the ex-VAT cost plus a fixed part, clamped
to the agreement's minimum and maximum, rounded by its policy):

- fee paid by the CPO:  the eMSP owes A, the CPO is owed A - F, the hub earns F;
- fee paid by the eMSP: the eMSP owes A + F, the CPO is owed A, the hub earns F.

Money is neither created nor destroyed: `emsp_owes == cpo_owed + fee`, exactly.

    >>> from schemas.hub.agreement import HubFee
    >>> fee_for(Decimal("10.00"), HubFee(percent=Decimal("1.5"), minimum=Decimal("0.05")))
    Decimal('0.150')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.hub.agreement import Agreement, FeePayer, HubFee
from settlement.money import RATING_CONTEXT, round_agreement

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Allocation:
    """The split of one CDR's money (all amounts rounded by the agreement's policy)."""

    amount_excl_vat: Decimal  # the settled price without VAT
    amount_incl_vat: Decimal  # the settled price with VAT: what changes hands
    fee: Decimal  # the hub's fee
    emsp_owes: Decimal  # what the eMSP pays the hub
    cpo_owed: Decimal  # what the hub pays the CPO (negative: the CPO owes the hub)

    def __post_init__(self) -> None:
        assert self.emsp_owes == self.cpo_owed + self.fee, "allocation must add up"


def fee_for(amount_excl_vat: Decimal, hub_fee: HubFee) -> Decimal:
    """The unrounded hub fee: percent of the ex-VAT cost plus fixed, clamped to min/max."""
    fee = Decimal(0)
    if hub_fee.percent is not None:
        fee = RATING_CONTEXT.multiply(amount_excl_vat, hub_fee.percent) / _HUNDRED
    if hub_fee.fixed is not None:
        fee = RATING_CONTEXT.add(fee, hub_fee.fixed)
    if hub_fee.minimum is not None and fee < hub_fee.minimum:
        fee = hub_fee.minimum
    if hub_fee.maximum is not None and fee > hub_fee.maximum:
        fee = hub_fee.maximum
    return fee


def _rounded_fee(fee: Decimal, agreement: Agreement) -> Decimal:
    """The fee rounded by the agreement's policy, but never past its minimum or maximum (a
    maximum of 0.0045 rounded half-up to 3 decimals would otherwise charge 0.005)."""
    policy, bounds = agreement.rounding, agreement.hub_fee
    rounded = round_agreement(fee, policy.mode, policy.decimals)
    if bounds.maximum is not None and rounded > bounds.maximum:
        rounded = round_agreement(fee, "DOWN", policy.decimals)
    if bounds.minimum is not None and rounded < bounds.minimum:
        rounded = round_agreement(fee, "UP", policy.decimals)
    return rounded


def allocate(
    amount_excl_vat: Decimal, amount_incl_vat: Decimal, agreement: Agreement
) -> Allocation:
    """Split a settled CDR amount under `agreement` (non-negative amounts: a charge)."""
    assert amount_excl_vat >= 0 and amount_incl_vat >= 0, "credits reverse, never allocate"
    policy = agreement.rounding
    excl = round_agreement(amount_excl_vat, policy.mode, policy.decimals)
    incl = round_agreement(amount_incl_vat, policy.mode, policy.decimals)
    fee = _rounded_fee(fee_for(amount_excl_vat, agreement.hub_fee), agreement)
    if agreement.fee_payer is FeePayer.CPO:
        emsp_owes, cpo_owed = incl, incl - fee
    else:
        emsp_owes, cpo_owed = incl + fee, incl
    return Allocation(
        amount_excl_vat=excl,
        amount_incl_vat=incl,
        fee=fee,
        emsp_owes=emsp_owes,
        cpo_owed=cpo_owed,
    )
