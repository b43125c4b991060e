"""A priced CDR: per-period charges, OCPI totals, the CPO comparison and the tariff used.

Worked example (tariff "€0.25/kWh + 10 % VAT, €0.50 start fee + 20 % VAT", 20 kWh)::

    RatedCdr(
      periods=(PeriodCharge(index=0, charges=(
          ComponentCharge(ENERGY, element_index=0, volume=20, billed_volume=20, cost=5.00/5.50),
          ComponentCharge(FLAT,   element_index=0, volume=1,  billed_volume=1,  cost=0.50/0.60),
      )),),
      totals=Totals(total_cost=Price(5.5000, 6.1000), total_energy_cost=Price(5.0000, 5.5000),
                    total_fixed_cost=Price(0.5000, 0.6000), total_time_cost=None, ...),
      tariff=TariffRef(id="13", last_updated=..., content_hash="9c1f…"))

Amounts in ``PeriodCharge`` are exact (full precision); ``Totals`` are rounded with
``settlement.money.round_cdr_total`` (4 decimals, half-up). ``exact_totals`` keeps them
unrounded for reconciliation.

The rating hot path builds about twenty of these values per CDR, so the engine makes them
with the ``new_*`` functions at the end of this module: the same frozen objects as the
generated ``__init__`` makes, at half its cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
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


# Fast constructors. A frozen dataclass's generated ``__init__`` sets each field through
# ``object.__setattr__(self, name, value)``; calling the slot's own descriptor on a fresh
# instance stores the same value in the same slot without the name lookup, about twice as
# fast. Only for values the engine builds per CDR; each lists every field, in order, and
# ``_setters`` fails at import if a field is added to the class and not here.

_Setter = Callable[[object, object], None]
_new = object.__new__


def _setters(cls: type, *names: str) -> tuple[_Setter, ...]:
    if names != tuple(f.name for f in fields(cls)):
        raise TypeError(f"fast constructor of {cls.__name__} must set {fields(cls)}")
    return tuple(cls.__dict__[name].__set__ for name in names)


_PRICE_EXCL, _PRICE_INCL = _setters(Price, "excl_vat", "incl_vat")


def new_price(excl_vat: Decimal, incl_vat: Decimal) -> Price:
    """``Price(excl_vat, incl_vat)``, built faster (see above)."""
    price = _new(Price)
    _PRICE_EXCL(price, excl_vat)
    _PRICE_INCL(price, incl_vat)
    return price


(
    _CC_DIMENSION,
    _CC_ELEMENT_INDEX,
    _CC_COMPONENT_INDEX,
    _CC_PRICE,
    _CC_VAT,
    _CC_STEP_SIZE,
    _CC_VOLUME,
    _CC_BILLED_VOLUME,
    _CC_COST,
    _CC_RESERVATION,
) = _setters(
    ComponentCharge,
    "dimension",
    "element_index",
    "component_index",
    "price",
    "vat",
    "step_size",
    "volume",
    "billed_volume",
    "cost",
    "reservation",
)


def new_component_charge(
    dimension: Dimension,
    element_index: int,
    component_index: int,
    price: Decimal,
    vat: Decimal | None,
    step_size: int,
    volume: Decimal,
    billed_volume: Decimal,
    cost: Price,
    reservation: bool,
) -> ComponentCharge:
    """``ComponentCharge(...)`` with the fields in declaration order, built faster."""
    charge = _new(ComponentCharge)
    _CC_DIMENSION(charge, dimension)
    _CC_ELEMENT_INDEX(charge, element_index)
    _CC_COMPONENT_INDEX(charge, component_index)
    _CC_PRICE(charge, price)
    _CC_VAT(charge, vat)
    _CC_STEP_SIZE(charge, step_size)
    _CC_VOLUME(charge, volume)
    _CC_BILLED_VOLUME(charge, billed_volume)
    _CC_COST(charge, cost)
    _CC_RESERVATION(charge, reservation)
    return charge


_PC_INDEX, _PC_START, _PC_END, _PC_TARIFF_ID, _PC_CHARGES, _PC_UNPRICED = _setters(
    PeriodCharge,
    "index",
    "start_date_time",
    "end_date_time",
    "tariff_id",
    "charges",
    "unpriced",
)


def new_period_charge(
    index: int,
    start_date_time: datetime,
    end_date_time: datetime,
    tariff_id: str | None,
    charges: tuple[ComponentCharge, ...],
    unpriced: tuple[Dimension, ...],
) -> PeriodCharge:
    """``PeriodCharge(...)`` with the fields in declaration order, built faster."""
    period = _new(PeriodCharge)
    _PC_INDEX(period, index)
    _PC_START(period, start_date_time)
    _PC_END(period, end_date_time)
    _PC_TARIFF_ID(period, tariff_id)
    _PC_CHARGES(period, charges)
    _PC_UNPRICED(period, unpriced)
    return period


_T_COST, _T_ENERGY, _T_TIME, _T_PARKING, _T_FIXED, _T_RESERVATION = _setters(Totals, *TOTAL_FIELDS)


def new_totals(
    total_cost: Price,
    total_energy_cost: Price | None,
    total_time_cost: Price | None,
    total_parking_cost: Price | None,
    total_fixed_cost: Price | None,
    total_reservation_cost: Price | None,
) -> Totals:
    """``Totals(...)`` with the fields in ``TOTAL_FIELDS`` order, built faster."""
    totals = _new(Totals)
    _T_COST(totals, total_cost)
    _T_ENERGY(totals, total_energy_cost)
    _T_TIME(totals, total_time_cost)
    _T_PARKING(totals, total_parking_cost)
    _T_FIXED(totals, total_fixed_cost)
    _T_RESERVATION(totals, total_reservation_cost)
    return totals


(
    _RC_CDR_ID,
    _RC_CURRENCY,
    _RC_CREDIT,
    _RC_TIME_ZONE,
    _RC_TARIFF,
    _RC_PERIODS,
    _RC_TOTALS,
    _RC_EXACT_TOTALS,
    _RC_PRICE_LIMIT,
    _RC_DECLARED,
    _RC_COMPARISON,
) = _setters(
    RatedCdr,
    "cdr_id",
    "currency",
    "credit",
    "time_zone",
    "tariff",
    "periods",
    "totals",
    "exact_totals",
    "price_limit",
    "declared",
    "comparison",
)


def new_rated_cdr(
    *,
    cdr_id: str | None,
    currency: str,
    credit: bool,
    time_zone: str | None,
    tariff: TariffRef,
    periods: tuple[PeriodCharge, ...],
    totals: Totals,
    exact_totals: Totals,
    price_limit: str | None,
    declared: DeclaredTotals,
    comparison: Comparison,
) -> RatedCdr:
    """``RatedCdr(...)`` (keywords only), built faster."""
    rated = _new(RatedCdr)
    _RC_CDR_ID(rated, cdr_id)
    _RC_CURRENCY(rated, currency)
    _RC_CREDIT(rated, credit)
    _RC_TIME_ZONE(rated, time_zone)
    _RC_TARIFF(rated, tariff)
    _RC_PERIODS(rated, periods)
    _RC_TOTALS(rated, totals)
    _RC_EXACT_TOTALS(rated, exact_totals)
    _RC_PRICE_LIMIT(rated, price_limit)
    _RC_DECLARED(rated, declared)
    _RC_COMPARISON(rated, comparison)
    return rated
