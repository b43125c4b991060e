"""A priced CDR: per-period charges, OCPI totals, the CPO comparison and the tariff used.

Worked example (tariff "€0.25/kWh + 10 % VAT, €0.50 start fee + 20 % VAT", 20 kWh)::

    RatedCdr(
      periods=(PeriodCharge(index=0, charges=(
          ComponentCharge(ENERGY, element_index=0, volume=20, billed_volume=20, cost=5.00/5.50),
          ComponentCharge(FLAT,   element_index=0, volume=1,  billed_volume=1,  cost=0.50/0.60),
      )),),
      totals=CostTotals(total_cost=Cost(5.5000, 6.1000), total_energy_cost=Cost(5.0000, 5.5000),
                    total_fixed_cost=Cost(0.5000, 0.6000), total_time_cost=None, ...),
      tariff=TariffRef(id="13", last_updated=..., content_hash="9c1f…"))

Amounts in ``PeriodCharge`` are exact (full precision); ``CostTotals`` are rounded with
``settlement.money.round_cdr_total`` (4 decimals, half-up). ``exact_totals`` keeps them
unrounded for reconciliation.

The rating hot path builds about thirty of these values per CDR, so they are frozen
``msgspec.Struct`` records rather than frozen dataclasses: the same fields, equality, hash
and repr, immutable too (assigning raises AttributeError), built in C (a ComponentCharge in
about a tenth of a dataclass's time) and, holding only immutable values and never a
cycle, left out of the garbage collector's tracking (``gc=False``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from settlement.rating.model import Dimension, TariffRef

TOTAL_FIELDS = (
    "total_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_fixed_cost",
    "total_reservation_cost",
)
"""The OCPI CDR cost fields, in the order the CDR module lists them."""


class Cost(msgspec.Struct, frozen=True, gc=False):
    """What something cost, excluding and including VAT, both sides known. (OCPI calls this
    shape Price; ``schemas.ocpi.types.Price`` is the wire model, whose ``incl_vat`` may be
    absent.)"""

    excl_vat: Decimal
    incl_vat: Decimal


class DeclaredPrice(msgspec.Struct, frozen=True, gc=False):
    """A cost as the CPO declared it: ``incl_vat`` is optional in OCPI 2.2.1 (and absent in
    2.1.1, where ``total_cost`` is a plain number)."""

    excl_vat: Decimal
    incl_vat: Decimal | None


class ComponentCharge(msgspec.Struct, frozen=True, gc=False):
    """One dimension of one period, priced by one component of one element.

    ``volume`` is the CDR volume (kWh, hours; 1 for FLAT), ``billed_volume`` the volume after
    the session's step_size rounding was added to it (mod_cdrs "step_size").
    """

    dimension: Dimension
    element_index: int
    component_index: int
    price: Decimal  # per unit, excl. VAT
    vat: Decimal | None  # percent; None: no VAT applicable
    step_size: int
    volume: Decimal
    billed_volume: Decimal
    cost: Cost  # exact
    reservation: bool  # counts towards total_reservation_cost


class PeriodCharge(msgspec.Struct, frozen=True, gc=False):
    """A charging period and what it cost. ``unpriced`` lists its dimensions that no element
    priced (free by mod_tariffs, Tariff object: no matching element means no cost)."""

    index: int  # position in the CDR's charging_periods
    start_date_time: datetime
    end_date_time: datetime
    tariff_id: str | None
    charges: tuple[ComponentCharge, ...]
    unpriced: tuple[Dimension, ...]


class CostTotals(msgspec.Struct, frozen=True, gc=False):
    """The OCPI CDR cost totals as rated; None where the tariff has no component of that
    kind. (Not ``settlement.batches.model.Totals``, a settlement batch's sums.)"""

    total_cost: Cost
    total_energy_cost: Cost | None
    total_time_cost: Cost | None
    total_parking_cost: Cost | None
    total_fixed_cost: Cost | None
    total_reservation_cost: Cost | None

    def get(self, field: str) -> Cost | None:
        value: Cost | None = getattr(self, field)
        return value


class DeclaredTotals(msgspec.Struct, frozen=True, gc=False):
    """The CPO's own totals from the CDR; None where the CDR leaves a field out."""

    total_cost: DeclaredPrice | None
    total_energy_cost: DeclaredPrice | None
    total_time_cost: DeclaredPrice | None
    total_parking_cost: DeclaredPrice | None
    total_fixed_cost: DeclaredPrice | None
    total_reservation_cost: DeclaredPrice | None

    def get(self, field: str) -> DeclaredPrice | None:
        value: DeclaredPrice | None = getattr(self, field)
        return value


class FieldDelta(msgspec.Struct, frozen=True, gc=False):
    """Computed vs declared for one total; a delta is None where a side is missing."""

    field: str
    delta_excl_vat: Decimal | None
    delta_incl_vat: Decimal | None
    within_tolerance: bool


class Comparison(msgspec.Struct, frozen=True, gc=False):
    """The priced CDR against the CPO's declared totals, field by field."""

    tolerance: Decimal
    fields: tuple[FieldDelta, ...]
    within_tolerance: bool


class RatedCdr(msgspec.Struct, frozen=True, gc=False):
    """The result of ``rate_cdr``."""

    cdr_id: str | None
    currency: str
    credit: bool  # a credit CDR: every amount is negated (see engine docstring)
    time_zone: str | None  # the zone local-time restrictions were evaluated in
    tariff: TariffRef
    periods: tuple[PeriodCharge, ...]
    totals: CostTotals  # rounded to 4 decimals
    exact_totals: CostTotals  # full precision
    price_limit: str | None  # "min_price" or "max_price" when one changed total_cost
    declared: DeclaredTotals
    comparison: Comparison
