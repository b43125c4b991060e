"""The rating engine's own frozen values: a compiled tariff and the facts of a session.

A tariff is compiled once (``compile.py``) into these values, which the engine evaluates
without touching the pydantic wire models again. For example the OCPI element

    {"price_components": [{"type": "TIME", "price": 2.40, "step_size": 900}],
     "restrictions": {"start_time": "17:00", "end_time": "20:00"}}

becomes ``CompiledElement(index=1, time=CompiledComponent(TIME, 2.40, None, 900), ...,
restrictions=CompiledRestrictions(start_second=61200, end_second=72000, ...))`` whose
``holds`` is the closure ``lambda facts: 61200 <= facts.local_second < 72000``, and
``CompiledTariff.candidates[ReservationMode.NONE][Dimension.TIME]`` lists, in tariff order,
the (element, component) pairs that may price charging time outside a reservation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple


class Dimension(enum.StrEnum):
    """A priced dimension of a charging period (CDR side)."""

    ENERGY = "ENERGY"  # kWh charged, priced by ENERGY components
    TIME = "TIME"  # hours charging, priced by TIME components
    PARKING_TIME = "PARKING_TIME"  # hours not charging, priced by PARKING_TIME components
    RESERVATION_TIME = "RESERVATION_TIME"  # hours reserved, priced by TIME in reservation elements
    FLAT = "FLAT"  # once per element that becomes active


class ReservationMode(enum.Enum):
    """Which elements may price a lookup (mod_tariffs ReservationRestrictionType)."""

    NONE = "none"  # charging/parking: elements without a reservation restriction
    RESERVED = "reserved"  # a reservation followed by charging: RESERVATION elements
    EXPIRED = "expired"  # an expired reservation: RESERVATION_EXPIRES, then RESERVATION


class ReservationKind(enum.StrEnum):
    """The value of TariffRestrictions.reservation."""

    RESERVATION = "RESERVATION"  # costs of a reservation
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"  # costs of a reservation that expired


@dataclass(frozen=True, slots=True)
class CompiledComponent:
    """One PriceComponent: price per unit excl. VAT, VAT percent (None: no VAT applicable)."""

    dimension: str  # the OCPI TariffDimensionType value
    price: Decimal
    vat: Decimal | None
    step_size: int  # Wh for ENERGY, seconds for TIME/PARKING_TIME, unused for FLAT
    component_index: int
    vat_multiplier: Decimal  # 1 + vat/100 (exact), 1 when no VAT applies
    step_size_kwh: Decimal  # step_size / 1000 (exact): the ENERGY step in kWh
    # k when step_size_kwh is 10**k (1 Wh: -3), else None: an energy total with exponent >= k
    # is already a multiple of the step, so step rounding adds nothing.
    step_size_kwh_exponent: int | None
    step_size_s: Decimal  # step_size as a Decimal: the TIME/PARKING_TIME step in seconds


@dataclass(frozen=True, slots=True)
class CompiledRestrictions:
    """TariffRestrictions in evaluable form; None means "not restricted"."""

    start_second: int | None  # local seconds of day, inclusive
    end_second: int | None  # local seconds of day, exclusive; "00:00" is 86400 (end of day)
    start_date: date | None  # local date, inclusive
    end_date: date | None  # local date, exclusive
    min_kwh: Decimal | None  # session energy so far, inclusive
    max_kwh: Decimal | None  # session energy so far, exclusive
    min_current: Decimal | None
    max_current: Decimal | None
    min_power: Decimal | None
    max_power: Decimal | None
    min_duration_us: int | None  # session duration so far, microseconds, inclusive
    max_duration_us: int | None  # exclusive
    weekdays: frozenset[int] | None  # datetime.weekday() values
    reservation: ReservationKind | None
    needs_local_time: bool


@dataclass(frozen=True, slots=True)
class CompiledElement:
    """A TariffElement: its position in the tariff, restrictions and first component per type."""

    index: int
    restrictions: CompiledRestrictions | None
    energy: CompiledComponent | None
    time: CompiledComponent | None
    parking: CompiledComponent | None
    flat: CompiledComponent | None
    # ``restrictions`` as one closure (``restrictions.compile_predicate``), None when the
    # element always applies. Derived from ``restrictions``, so left out of equality and repr.
    holds: Callable[[SessionPeriod], bool] | None = field(compare=False, repr=False)


Candidate = tuple[CompiledElement, CompiledComponent]
"""An element that may price a dimension, with its component for that dimension."""


@dataclass(frozen=True, slots=True)
class PriceLimit:
    """Tariff min_price / max_price; excl and incl VAT apply independently."""

    excl_vat: Decimal
    incl_vat: Decimal | None


@dataclass(frozen=True, slots=True)
class TariffRef:
    """Which tariff version priced a CDR (DESIGN.md invariant 7)."""

    id: str
    country_code: str | None
    party_id: str | None
    last_updated: datetime | None
    content_hash: str  # sha256 of the canonical JSON of the tariff


@dataclass(frozen=True, slots=True)
class CompiledTariff:
    """A tariff ready to evaluate. ``candidates`` maps (dimension, mode) to ordered elements."""

    ref: TariffRef
    currency: str
    elements: tuple[CompiledElement, ...]
    candidates: dict[ReservationMode, dict[Dimension, tuple[Candidate, ...]]]
    min_price: PriceLimit | None
    max_price: PriceLimit | None
    start_date_time: datetime | None
    end_date_time: datetime | None
    needs_local_time: bool
    # Which CDR totals this tariff can produce (None totals where it has no such component).
    has_energy: bool
    has_time: bool
    has_parking: bool
    has_fixed: bool
    has_reservation: bool


class SessionPeriod(NamedTuple):
    """One charging period in time order: its priced volumes and what a restriction may ask
    about it at its start (local time, energy and duration so far, current, power).

    A NamedTuple rather than a frozen dataclass: equally immutable, built once per period on
    the rating hot path, where it is four times cheaper to construct.
    """

    position: int  # index in the CDR's charging_periods
    start: datetime
    end: datetime
    tariff_id: str | None
    volumes: tuple[tuple[Dimension, Decimal], ...]  # priced dimensions, fixed order
    is_reservation: bool  # reports RESERVATION_TIME
    local_second: int  # seconds since local midnight (0 when no zone is needed)
    local_date: date | None
    weekday: int
    energy_so_far_kwh: Decimal
    duration_so_far_us: int
    min_current: Decimal | None
    max_current: Decimal | None
    min_power: Decimal | None
    max_power: Decimal | None
