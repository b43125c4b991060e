"""A priced CDR: per-period charges, OCPI totals, the CPO comparison and the tariff used.

Worked example (tariff "€0.25/kWh + 10 % VAT, €0.50 start fee + 20 % VAT", 20 kWh)::

    RatedCdr(
      periods=(PeriodCharge(index=0, charges=(
          ComponentCharge(FLAT,   element_index=0, volume=1,  billed_volume=1,  cost=0.50/0.60),
          ComponentCharge(ENERGY, element_index=0, volume=20, billed_volume=20, cost=5.00/5.50),
      )),),
      totals=Totals(total_cost=Price(5.5000, 6.1000), total_energy_cost=Price(5.0000, 5.5000),
                    total_fixed_cost=Price(0.5000, 0.6000), total_time_cost=None, ...),
      tariff=TariffRef(id="13", last_updated=..., content_hash="9c1f…"))

Amounts in ``PeriodCharge`` are exact (full precision); ``Totals`` are rounded with
``settlement.money.round_cdr_total`` (4 decimals, half-up). ``exact_totals`` keeps them
unrounded for reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

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


@dataclass(frozen=True, slots=True)
class Price:
    """An amount excluding and including VAT (OCPI Price, both sides known)."""

    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True, slots=True)
class DeclaredPrice:
    """A Price as the CPO declared it: ``incl_vat`` is optional in OCPI 2.2.1 (and absent in
    2.1.1, where ``total_cost`` is a plain number)."""

    excl_vat: Decimal
    incl_vat: Decimal | None


@dataclass(frozen=True, slots=True)
class ComponentCharge:
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
    cost: Price  # exact
    reservation: bool  # counts towards total_reservation_cost


@dataclass(frozen=True, slots=True)
class PeriodCharge:
    """A charging period and what it cost. ``unpriced`` lists its dimensions that no element
    priced (free by mod_tariffs, Tariff object: no matching element means no cost)."""

    index: int  # position in the CDR's charging_periods
    start_date_time: datetime
    end_date_time: datetime
    tariff_id: str | None
    charges: tuple[ComponentCharge, ...]
    unpriced: tuple[Dimension, ...]


@dataclass(frozen=True, slots=True)
class Totals:
    """The OCPI CDR cost totals; None where the tariff has no component of that kind."""

    total_cost: Price
    total_energy_cost: Price | None
    total_time_cost: Price | None
    total_parking_cost: Price | None
    total_fixed_cost: Price | None
    total_reservation_cost: Price | None

    def get(self, field: str) -> Price | None:
        value: Price | None = getattr(self, field)
        return value


@dataclass(frozen=True, slots=True)
class DeclaredTotals:
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


@dataclass(frozen=True, slots=True)
class FieldDelta:
    """Computed vs declared for one total; a delta is None where a side is missing."""

    field: str
    delta_excl_vat: Decimal | None
    delta_incl_vat: Decimal | None
    within_tolerance: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    """The priced CDR against the CPO's declared totals, field by field."""

    tolerance: Decimal
    fields: tuple[FieldDelta, ...]
    within_tolerance: bool


@dataclass(frozen=True, slots=True)
class RatedCdr:
    """The result of ``rate_cdr``."""

    cdr_id: str | None
    currency: str
    credit: bool  # a credit CDR: every amount is negated (see engine docstring)
    time_zone: str | None  # the zone local-time restrictions were evaluated in
    tariff: TariffRef
    periods: tuple[PeriodCharge, ...]
    totals: Totals  # rounded to 4 decimals
    exact_totals: Totals  # full precision
    price_limit: str | None  # "min_price" or "max_price" when one changed total_cost
    declared: DeclaredTotals
    comparison: Comparison
