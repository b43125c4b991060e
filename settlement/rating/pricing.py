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

from settlement.money import SECONDS_PER_HOUR, ZERO, hours_from_seconds, round_up_to_step
from settlement.rating.model import (
    CompiledComponent,
    CompiledElement,
    CompiledTariff,
    Dimension,
    ReservationMode,
)
from settlement.rating.periods import Session
from settlement.rating.results import (
    ComponentCharge,
    PeriodCharge,
    new_component_charge,
    new_period_charge,
    new_price,
)

_ONE: Final = Decimal(1)
_ENERGY: Final = Dimension.ENERGY
_TIME: Final = Dimension.TIME
_PARKING_TIME: Final = Dimension.PARKING_TIME
_RESERVATION_TIME: Final = Dimension.RESERVATION_TIME
_FLAT: Final = Dimension.FLAT


_Match = tuple[int, Dimension, CompiledElement, CompiledComponent, Decimal, bool]
"""(period rank, dimension, element, component, volume, reservation): before step_size.
A plain tuple: built several times per CDR on the hot path."""
_DIMENSION: Final = 1
_COMPONENT: Final = 3
_VOLUME: Final = 4


def match_session(
    tariff: CompiledTariff, session: Session
) -> tuple[list[_Match], list[tuple[Dimension, ...]]]:
    """Every (period, dimension) matched to its component; plus the unpriced dimensions.

    The first candidate (in tariff order) whose element's compiled restrictions hold for the
    period prices it (``CompiledElement.holds``; None: unrestricted)."""
    plain = tariff.candidates[ReservationMode.NONE]
    reserved = tariff.candidates[
        ReservationMode.EXPIRED if session.reservation_expired else ReservationMode.RESERVED
    ]
    plain_flat, reserved_flat = plain[_FLAT], reserved[_FLAT]
    matches: list[_Match] = []
    unpriced: list[tuple[Dimension, ...]] = []
    flat_elements_charged: set[int] = set()
    for rank, period in enumerate(session.periods):
        missing: tuple[Dimension, ...] = ()
        for dimension, volume in period.volumes:
            reservation = dimension is _RESERVATION_TIME
            for element, component in (reserved if reservation else plain)[dimension]:
                holds = element.holds
                if holds is None or holds(period):
                    matches.append((rank, dimension, element, component, volume, reservation))
                    break
            else:
                missing += (dimension,)
        is_reservation = period.is_reservation
        for element, component in reserved_flat if is_reservation else plain_flat:
            holds = element.holds
            if holds is None or holds(period):
                if element.index not in flat_elements_charged:
                    flat_elements_charged.add(element.index)
                    matches.append((rank, _FLAT, element, component, _ONE, is_reservation))
                break
        unpriced.append(missing)
    return matches, unpriced


def _step_extra(group: list[int], matches: list[_Match]) -> tuple[int, Decimal] | None:
    """(index of the last match of the group, volume to add to it), or None."""
    if not group:
        return None
    last = group[-1]
    component = matches[last][_COMPONENT]
    if component.step_size <= 0:
        return None
    total = ZERO
    for index in group:
        total += matches[index][_VOLUME]
    if matches[last][_DIMENSION] is _ENERGY:
        exponent = component.step_size_kwh_exponent
        if exponent is not None:
            total_exponent = total.as_tuple().exponent
            if isinstance(total_exponent, int) and total_exponent >= exponent:
                return None  # already a multiple of the step (e.g. 1 Wh, kWh to 3 decimals)
        billed = round_up_to_step(total, component.step_size_kwh)
    else:
        billed = hours_from_seconds(
            round_up_to_step(total * SECONDS_PER_HOUR, component.step_size_s)
        )
    extra = billed - total
    return (last, extra) if extra > ZERO else None


def step_extras(matches: list[_Match]) -> dict[int, Decimal]:
    """Volume added by step_size, keyed by index into ``matches`` (see module docstring)."""
    energy: list[int] = []
    time: list[int] = []
    parking: list[int] = []
    reservation: list[int] = []
    for index, match in enumerate(matches):
        dimension = match[_DIMENSION]
        if dimension is _ENERGY:
            energy.append(index)
        elif dimension is _TIME:
            time.append(index)
        elif dimension is _PARKING_TIME:
            parking.append(index)
        elif dimension is _RESERVATION_TIME:
            reservation.append(index)
    extras: dict[int, Decimal] = {}
    for group in (energy, parking or time, reservation):
        found = _step_extra(group, matches)
        if found is not None:
            extras[found[0]] = found[1]
    return extras


def charge_periods(tariff: CompiledTariff, session: Session) -> tuple[PeriodCharge, ...]:
    """Price the session: matched components, step_size applied, exact costs per period."""
    matches, unpriced = match_session(tariff, session)
    extras = step_extras(matches)
    periods = session.periods
    charges: list[list[ComponentCharge]] = [[] for _ in periods]
    for index, (rank, dimension, element, component, volume, reservation) in enumerate(matches):
        extra = extras.get(index) if extras else None
        billed = volume if extra is None else volume + extra
        price = component.price
        excl = billed * price
        charges[rank].append(
            new_component_charge(
                dimension,
                element.index,
                component.component_index,
                price,
                component.vat,
                component.step_size,
                volume,
                billed,
                new_price(excl, excl * component.vat_multiplier),  # exact: vat has <= 4 dp
                reservation,
            )
        )
    return tuple(
        [
            new_period_charge(
                period.position,
                period.start,
                period.end,
                period.tariff_id,
                tuple(charges[rank]),
                unpriced[rank],
            )
            for rank, period in enumerate(periods)
        ]
    )
