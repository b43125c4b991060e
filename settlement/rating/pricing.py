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

One pass over the periods matches every priced dimension and sums the volumes of each
step_size group as it goes; one pass over the matches then adds the step extras, builds the
charges and sums the exact costs per CDR total (``ChargedPeriods.sums``), in charge order,
so ``totals`` need not walk the charges again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import msgspec

from settlement.money import SECONDS_PER_HOUR, ZERO, hours_from_seconds, round_up_to_step
from settlement.rating.model import (
    CompiledComponent,
    CompiledTariff,
    Dimension,
    ReservationMode,
)
from settlement.rating.periods import OrderedPeriods
from settlement.rating.results import (
    ComponentCharge,
    Cost,
    PeriodCharge,
)

_ONE: Final = Decimal(1)
_ENERGY: Final = Dimension.ENERGY
_TIME: Final = Dimension.TIME
_PARKING_TIME: Final = Dimension.PARKING_TIME
_RESERVATION_TIME: Final = Dimension.RESERVATION_TIME
_FLAT: Final = Dimension.FLAT

# The CDR total a charge counts towards, as an index into ``ChargedPeriods.sums``
# (``totals.SUBTOTAL_FIELDS`` order): by dimension, and reservation charges apart.
ENERGY_COST, TIME_COST, PARKING_COST, FIXED_COST, RESERVATION_COST = range(5)
_SUBTOTAL_OF: Final = {
    _ENERGY: ENERGY_COST,
    _TIME: TIME_COST,
    _PARKING_TIME: PARKING_COST,
    _FLAT: FIXED_COST,
    _RESERVATION_TIME: RESERVATION_COST,
}

_Match = tuple[int, Dimension, int, CompiledComponent, Decimal, bool]
"""(period rank, dimension, element index, component, volume, reservation): before step_size.
A plain tuple: built several times per CDR on the hot path."""


class ChargedPeriods(msgspec.Struct, frozen=True, gc=False):
    """The priced periods and, per CDR subtotal, the exact (excl, incl) sums of their costs
    (None where nothing was charged towards it)."""

    periods: tuple[PeriodCharge, ...]
    sums: tuple[tuple[Decimal, Decimal] | None, ...]  # indexed by ENERGY_COST .. RESERVATION_COST
    total_excl_vat: Decimal  # every charge, excl. VAT
    total_incl_vat: Decimal
    charged: bool  # some period has a charge


# The step_size groups, as indexes into the per-group sums and last matches of ``_match``.
_GROUP_OF: Final = {_ENERGY: 0, _TIME: 1, _PARKING_TIME: 2, _RESERVATION_TIME: 3}


def _step_extra(total: Decimal, component: CompiledComponent, energy: bool) -> Decimal | None:
    """The volume step_size adds to the last match of a group whose volumes sum to
    ``total``, or None."""
    if component.step_size <= 0:
        return None
    if energy:
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
    return extra if extra > ZERO else None


def _match(
    tariff: CompiledTariff, ordered: OrderedPeriods
) -> tuple[list[_Match], list[tuple[Dimension, ...]], dict[int, Decimal]]:
    """Every (period, dimension) matched to its component, the unpriced dimensions per
    period, and the step_size extras keyed by index into the matches.

    The first candidate (in tariff order) whose element's compiled restrictions hold for the
    period prices it (``CompiledElement.holds``; None: unrestricted)."""
    plain = tariff.candidates[ReservationMode.NONE]
    reserved = tariff.candidates[
        ReservationMode.EXPIRED if ordered.reservation_expired else ReservationMode.RESERVED
    ]
    plain_flat, reserved_flat = plain[_FLAT], reserved[_FLAT]
    matches: list[_Match] = []
    unpriced: list[tuple[Dimension, ...]] = []
    flat_elements_charged: set[int] = set()
    group_of = _GROUP_OF
    # per step_size group: the index of its last match (-1: none yet) and its volume sum, in
    # match order from ZERO (which fixes the exact digits of the sum)
    lasts = [-1, -1, -1, -1]
    totals = [ZERO, ZERO, ZERO, ZERO]
    for rank, period in enumerate(ordered.periods):
        missing: tuple[Dimension, ...] = ()
        for dimension, volume in period.volumes:
            reservation = dimension is _RESERVATION_TIME
            for element, component in (reserved if reservation else plain)[dimension]:
                holds = element.holds
                if holds is None or holds(period):
                    group = group_of[dimension]
                    lasts[group] = len(matches)
                    totals[group] += volume
                    matches.append((rank, dimension, element.index, component, volume, reservation))
                    break
            else:
                missing += (dimension,)
        is_reservation = period.is_reservation
        for element, component in reserved_flat if is_reservation else plain_flat:
            holds = element.holds
            if holds is None or holds(period):
                if element.index not in flat_elements_charged:
                    flat_elements_charged.add(element.index)
                    matches.append((rank, _FLAT, element.index, component, _ONE, is_reservation))
                break
        unpriced.append(missing)
    extras: dict[int, Decimal] = {}
    time_group = 2 if lasts[2] >= 0 else 1  # parking when any is priced, else charging time
    for group in (0, time_group, 3):
        last = lasts[group]
        if last >= 0:
            extra = _step_extra(totals[group], matches[last][3], group == 0)
            if extra is not None:
                extras[last] = extra
    return matches, unpriced, extras


def charge_periods(tariff: CompiledTariff, ordered: OrderedPeriods) -> ChargedPeriods:
    """Price the periods: matched components, step_size applied, exact costs per period and
    their sums per CDR total (see the module docstring)."""
    matches, unpriced, extras = _match(tariff, ordered)
    periods = ordered.periods
    charges: list[list[ComponentCharge]] = [[] for _ in periods]
    sums: list[list[Decimal] | None] = [None, None, None, None, None]
    subtotal_of = _SUBTOTAL_OF
    total_excl = total_incl = ZERO
    for index, (rank, dimension, element_index, component, volume, reservation) in enumerate(
        matches
    ):
        extra = extras.get(index) if extras else None
        billed = volume if extra is None else volume + extra
        price = component.price
        excl = billed * price
        incl = excl * component.vat_multiplier  # exact: vat has <= 4 decimals
        charges[rank].append(
            ComponentCharge(
                dimension,
                element_index,
                component.component_index,
                price,
                component.vat,
                component.step_size,
                volume,
                billed,
                Cost(excl, incl),
                reservation,
            )
        )
        # Every sum starts at ZERO and adds in charge order: both fix the exact digits of the
        # result (0 + Decimal("5E+1") is Decimal("50"), not Decimal("5E+1")).
        slot = RESERVATION_COST if reservation else subtotal_of[dimension]
        pair = sums[slot]
        if pair is None:
            sums[slot] = [ZERO + excl, ZERO + incl]
        else:
            pair[0] += excl
            pair[1] += incl
        total_excl += excl
        total_incl += incl
    return ChargedPeriods(
        periods=tuple(
            [
                PeriodCharge(
                    period.position,
                    period.start,
                    period.end,
                    period.tariff_id,
                    tuple(charges[rank]),
                    unpriced[rank],
                )
                for rank, period in enumerate(periods)
            ]
        ),
        sums=tuple([None if pair is None else (pair[0], pair[1]) for pair in sums]),
        total_excl_vat=total_excl,
        total_incl_vat=total_incl,
        charged=bool(matches),
    )
