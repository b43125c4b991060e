"""From period charges to the OCPI CDR totals, price limits, and the CPO comparison.

- Sums are exact; each total is rounded once, by ``round_cdr_total`` (4 decimals, half-up).
- total_fixed_cost: FLAT components outside reservations; total_reservation_cost: everything
  priced by reservation elements, "including fixed price components" (mod_cdrs CDR object).
- A subtotal is None where the tariff has no component of its kind.
- min_price / max_price (mod_tariffs Tariff object notes) bound ``total_cost`` only, excl. and
  incl. VAT independently; a limit without ``incl_vat`` bounds only the excl. side. How an
  uplift or cap spreads over subtotals is not specified, so subtotals stay as charged and
  ``RatedCdr.price_limit`` says which limit changed the total.
- Credit CDRs: every amount is negated after pricing the absolute volumes.

    energy 5.00/5.50 + fixed 0.50/0.60 -> total_cost 5.5000/6.1000
    with max_price 5.00/5.40 -> total_cost 5.0000/5.4000, price_limit "max_price"
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from schemas.ocpi.cdr import Cdr
from settlement.money import CDR_TOTAL_EXPONENT, RATING_CONTEXT, ZERO, round_cdr_total
from settlement.rating.model import CompiledTariff, PriceLimit
from settlement.rating.pricing import ChargedPeriods
from settlement.rating.results import (
    TOTAL_FIELDS,
    Comparison,
    Cost,
    CostTotals,
    DeclaredPrice,
    DeclaredTotals,
    FieldDelta,
)

_FREE: Final = Cost(ZERO, ZERO)
"""A subtotal the tariff can produce but nothing charged (shared: Cost is immutable)."""
_FREE_ROUNDED: Final = Cost(round_cdr_total(ZERO), round_cdr_total(ZERO))


def _limited(
    excl: Decimal, incl: Decimal, min_price: PriceLimit | None, max_price: PriceLimit | None
) -> tuple[Cost, str | None]:
    applied = None
    if min_price is not None:
        if excl < min_price.excl_vat:
            excl, applied = min_price.excl_vat, "min_price"
        if min_price.incl_vat is not None and incl < min_price.incl_vat:
            incl, applied = min_price.incl_vat, "min_price"
    if max_price is not None:
        if excl > max_price.excl_vat:
            excl, applied = max_price.excl_vat, "max_price"
        if max_price.incl_vat is not None and incl > max_price.incl_vat:
            incl, applied = max_price.incl_vat, "max_price"
    return Cost(excl, incl), applied


def exact_totals(tariff: CompiledTariff, charged: ChargedPeriods) -> tuple[CostTotals, str | None]:
    """Full-precision totals, with min/max price applied to total_cost."""
    total, applied = _limited(
        charged.total_excl_vat, charged.total_incl_vat, tariff.min_price, tariff.max_price
    )
    energy, time, parking, fixed, reservation = charged.sums

    def subtotal(pair: tuple[Decimal, Decimal] | None, present: bool) -> Cost | None:
        if not present:
            return None
        return _FREE if pair is None else Cost(pair[0], pair[1])

    totals = CostTotals(
        total,
        subtotal(energy, tariff.has_energy),
        subtotal(time, tariff.has_time),
        subtotal(parking, tariff.has_parking),
        subtotal(fixed, tariff.has_fixed),
        subtotal(reservation, tariff.has_reservation),
    )
    return totals, applied


_quantize: Final = Decimal.quantize


def _rounded(cost: Cost | None) -> Cost | None:
    # round_cdr_total, written out (up to twelve per CDR): 4 decimals, half-up
    if cost is None:
        return None
    if cost is _FREE:
        return _FREE_ROUNDED
    return Cost(
        _quantize(cost.excl_vat, CDR_TOTAL_EXPONENT, ROUND_HALF_UP, RATING_CONTEXT),
        _quantize(cost.incl_vat, CDR_TOTAL_EXPONENT, ROUND_HALF_UP, RATING_CONTEXT),
    )


def _map(totals: CostTotals, negate: bool, rounding: bool) -> CostTotals:
    def one(cost: Cost | None) -> Cost | None:
        if cost is None:
            return None
        excl, incl = cost.excl_vat, cost.incl_vat
        if negate:
            excl, incl = ZERO - excl, ZERO - incl  # never -0
        if rounding:
            excl, incl = round_cdr_total(excl), round_cdr_total(incl)
        return Cost(excl, incl)

    total = one(totals.total_cost)
    assert total is not None
    return CostTotals(
        total_cost=total,
        total_energy_cost=one(totals.total_energy_cost),
        total_time_cost=one(totals.total_time_cost),
        total_parking_cost=one(totals.total_parking_cost),
        total_fixed_cost=one(totals.total_fixed_cost),
        total_reservation_cost=one(totals.total_reservation_cost),
    )


def signed_totals(totals: CostTotals, credit: bool) -> tuple[CostTotals, CostTotals]:
    """(rounded, exact) totals, negated for a credit CDR."""
    if credit:
        return _map(totals, True, rounding=True), _map(totals, True, rounding=False)
    total = _rounded(totals.total_cost)
    assert total is not None
    rounded = CostTotals(
        total,
        _rounded(totals.total_energy_cost),
        _rounded(totals.total_time_cost),
        _rounded(totals.total_parking_cost),
        _rounded(totals.total_fixed_cost),
        _rounded(totals.total_reservation_cost),
    )
    return rounded, totals


def _declared(price: Any) -> DeclaredPrice | None:
    if price is None:
        return None
    return DeclaredPrice(price.excl_vat, price.incl_vat)


def declared_totals(cdr: Cdr) -> DeclaredTotals:
    """The CPO's totals as stated in the CDR."""
    return DeclaredTotals(
        _declared(cdr.total_cost),
        _declared(getattr(cdr, "total_energy_cost", None)),
        _declared(getattr(cdr, "total_time_cost", None)),
        _declared(getattr(cdr, "total_parking_cost", None)),
        _declared(getattr(cdr, "total_fixed_cost", None)),
        _declared(getattr(cdr, "total_reservation_cost", None)),
    )


def _delta(computed: Decimal, declared: Decimal, by_magnitude: bool) -> Decimal:
    if by_magnitude:
        return abs(abs(computed) - abs(declared))
    return abs(computed - declared)


_NOT_DECLARED = {field: FieldDelta(field, None, None, True) for field in TOTAL_FIELDS}
"""Shared (immutable) results for totals the CDR leaves out."""


def compare(
    totals: CostTotals, declared: DeclaredTotals, tolerance: Decimal, credit: bool
) -> Comparison:
    """Absolute delta per field. A field the CDR leaves out is not compared; a total the tariff
    cannot produce counts as zero. In a credit CDR only total_cost must be negative (mod_cdrs
    Credit CDRs), so its subtotals are compared by magnitude."""
    fields: list[FieldDelta] = []
    within_all = True
    computed_all = (
        totals.total_cost,
        totals.total_energy_cost,
        totals.total_time_cost,
        totals.total_parking_cost,
        totals.total_fixed_cost,
        totals.total_reservation_cost,
    )
    stated_all = (
        declared.total_cost,
        declared.total_energy_cost,
        declared.total_time_cost,
        declared.total_parking_cost,
        declared.total_fixed_cost,
        declared.total_reservation_cost,
    )
    for field, computed_or_none, stated in zip(TOTAL_FIELDS, computed_all, stated_all, strict=True):
        if stated is None:
            fields.append(_NOT_DECLARED[field])
            continue
        computed = computed_or_none or _FREE
        by_magnitude = credit and field != "total_cost"
        delta_excl = _delta(computed.excl_vat, stated.excl_vat, by_magnitude)
        delta_incl = (
            None
            if stated.incl_vat is None
            else _delta(computed.incl_vat, stated.incl_vat, by_magnitude)
        )
        within = delta_excl <= tolerance and (delta_incl is None or delta_incl <= tolerance)
        within_all = within_all and within
        fields.append(FieldDelta(field, delta_excl, delta_incl, within))
    return Comparison(tolerance, tuple(fields), within_all)
