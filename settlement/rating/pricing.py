"""Price each period's dimensions with the first matching element, then apply step_size.

Element lookup (mod_tariffs, Tariff object): per period and per dimension, the first element
in tariff order that has a component of that dimension and whose restrictions hold prices
it. No such element: the dimension is free in that period (listed in ``unpriced``).
FLAT (mod_tariffs PriceComponent, TariffDimensionType FLAT): charged once per element that
becomes the active FLAT element of some period, so a start fee is billed once per session
and a reservation fee in addition to it (mod_tariffs reservation examples).

step_size (mod_cdrs "step_size"), applied once per session, to priced volumes only:

- ENERGY: the session's priced energy is rounded up to the step_size (Wh) of the last period's
  ENERGY component; the extra is billed in that last period at its price.
- TIME and PARKING_TIME "combined": when any parking time is priced, only the parking total is
  rounded ("the charging duration is not rounded up, as it is followed by another time based
  period"), else the charging-time total; step of the last priced component of that dimension.
- RESERVATION_TIME (priced by reservation elements' TIME) is its own total: a reservation
  ends when charging starts, so its rounding is not "followed" by charging time
  (mod_tariffs reservation examples round 13 min to 15 min while energy is billed after it).
- step_size 0 means no rounding (the multiple of 0 is undefined; OCPI 3.0 drops step_size).

    Tariff 14 (1.20/h to 17:00 step 1800, 2.40/h after step 900), 16:35-17:10 charging:
    25 min + 10 min = 35 min -> 45 min with the last step (900 s); 20 min billed at 2.40 -> 1.30
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from settlement.money import (
    SECONDS_PER_HOUR,
    WH_PER_KWH,
    ZERO,
    hours_from_seconds,
    round_up_to_step,
)
from settlement.rating.model import (
    Candidate,
    CompiledComponent,
    CompiledElement,
    CompiledTariff,
    Dimension,
    ReservationMode,
    SessionPeriod,
)
from settlement.rating.periods import Session
from settlement.rating.restrictions import holds
from settlement.rating.results import ComponentCharge, PeriodCharge, Price

_ONE = Decimal(1)
_DIMENSIONS = tuple(Dimension)
_FLAT = Dimension.FLAT


_Match = tuple[int, Dimension, CompiledElement, CompiledComponent, Decimal, bool]
"""(period rank, dimension, element, component, volume, reservation): before step_size.
A plain tuple: built several times per CDR on the hot path."""
_DIMENSION: Final = 1
_COMPONENT: Final = 3
_VOLUME: Final = 4


def first_match(candidates: tuple[Candidate, ...], period: SessionPeriod) -> Candidate | None:
    """The first candidate whose element's restrictions hold for the period."""
    for candidate in candidates:
        restrictions = candidate[0].restrictions
        if restrictions is None or holds(restrictions, period):
            return candidate
    return None


def match_session(
    tariff: CompiledTariff, session: Session
) -> tuple[list[_Match], list[tuple[Dimension, ...]]]:
    """Every (period, dimension) matched to its component; plus the unpriced dimensions."""
    plain = tariff.candidates[ReservationMode.NONE]
    reserved = tariff.candidates[
        ReservationMode.EXPIRED if session.reservation_expired else ReservationMode.RESERVED
    ]
    matches: list[_Match] = []
    unpriced: list[tuple[Dimension, ...]] = []
    flat_elements_charged: set[int] = set()
    for rank, period in enumerate(session.periods):
        missing: tuple[Dimension, ...] = ()
        for dimension, volume in period.volumes:
            reservation = dimension is Dimension.RESERVATION_TIME
            found = first_match((reserved if reservation else plain)[dimension], period)
            if found is None:
                missing += (dimension,)
            else:
                matches.append((rank, dimension, found[0], found[1], volume, reservation))
        is_reservation = period.is_reservation
        found = first_match((reserved if is_reservation else plain)[_FLAT], period)
        if found is not None and found[0].index not in flat_elements_charged:
            flat_elements_charged.add(found[0].index)
            matches.append((rank, _FLAT, found[0], found[1], _ONE, is_reservation))
        unpriced.append(missing)
    return matches, unpriced


def _step_extra(group: list[int], matches: list[_Match]) -> tuple[int, Decimal] | None:
    """(index of the last match of the group, volume to add to it), or None."""
    if not group:
        return None
    last = group[-1]
    step = matches[last][_COMPONENT].step_size
    if step <= 0:
        return None
    total = ZERO
    for index in group:
        total += matches[index][_VOLUME]
    if matches[last][_DIMENSION] is Dimension.ENERGY:
        billed = round_up_to_step(total, Decimal(step) / WH_PER_KWH)
    else:
        billed = hours_from_seconds(round_up_to_step(total * SECONDS_PER_HOUR, Decimal(step)))
    extra = billed - total
    return (last, extra) if extra > ZERO else None


def step_extras(matches: list[_Match]) -> dict[int, Decimal]:
    """Volume added by step_size, keyed by index into ``matches`` (see module docstring)."""
    by_dimension: dict[Dimension, list[int]] = {d: [] for d in _DIMENSIONS}
    for index, match in enumerate(matches):
        by_dimension[match[_DIMENSION]].append(index)
    time_group = by_dimension[Dimension.PARKING_TIME] or by_dimension[Dimension.TIME]
    extras: dict[int, Decimal] = {}
    for group in (
        by_dimension[Dimension.ENERGY],
        time_group,
        by_dimension[Dimension.RESERVATION_TIME],
    ):
        found = _step_extra(group, matches)
        if found is not None:
            extras[found[0]] = found[1]
    return extras


def charge_periods(tariff: CompiledTariff, session: Session) -> tuple[PeriodCharge, ...]:
    """Price the session: matched components, step_size applied, exact costs per period."""
    matches, unpriced = match_session(tariff, session)
    extras = step_extras(matches)
    charges: list[list[ComponentCharge]] = [[] for _ in session.periods]
    for index, (rank, dimension, element, component, volume, reservation) in enumerate(matches):
        extra = extras.get(index)
        billed = volume if extra is None else volume + extra
        excl = billed * component.price
        charges[rank].append(
            ComponentCharge(
                dimension=dimension,
                element_index=element.index,
                component_index=component.component_index,
                price=component.price,
                vat=component.vat,
                step_size=component.step_size,
                volume=volume,
                billed_volume=billed,
                cost=Price(excl, excl * component.vat_multiplier),  # exact: vat has <= 4 dp
                reservation=reservation,
            )
        )
    return tuple(
        PeriodCharge(
            index=period.position,
            start_date_time=period.start,
            end_date_time=period.end,
            tariff_id=period.tariff_id,
            charges=tuple(charges[rank]),
            unpriced=unpriced[rank],
        )
        for rank, period in enumerate(session.periods)
    )
