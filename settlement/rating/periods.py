"""A CDR's charging periods as the engine sees them: chronological, with restriction facts.

mod_cdrs ChargingPeriod: "A period ends when the next period starts. The last period ends
when the session ends." Periods are therefore put in time order first (a stable sort: some
CPOs send them out of order), and each one gets the facts a restriction may ask about at its
start: local time, energy charged before it, session duration so far, current and power.

    CDR start 16:55Z, periods [16:55Z TIME 0.0834, 17:00Z TIME 0.0834, 17:02Z PARKING 0.0334]
    -> SessionPeriod(position=1, start=17:00Z, end=17:02Z, volumes=((TIME, 0.0834),),
                     local_second=61200, duration_so_far_us=300_000_000, ...)

The session starts at the earlier of the CDR's start_date_time and its first period (a CDR
may open its first period before start_date_time); durations are never negative.
Volumes of a credit CDR are taken by absolute value (see ``engine``); a negative priced
volume in any other CDR is ``NegativeVolume``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from schemas.ocpi.cdr import Cdr, CdrDimension
from settlement.money import ZERO
from settlement.rating.errors import EndBeforeStart, NegativeVolume, PeriodsLimitExceeded
from settlement.rating.model import Dimension, SessionPeriod

RATING_PERIODS_MAX: Final = 10_000
"""Charging periods rated per CDR (the schema allows as many; this bounds rating work)."""

_MICROSECOND: Final = timedelta(microseconds=1)

# Where each CdrDimensionType goes: the priced dimensions in their fixed order within a
# period (slots 0-3), then the current/power facts (slots 4-7).
_SLOT: Final = {
    "ENERGY": 0,
    "TIME": 1,
    "PARKING_TIME": 2,
    "RESERVATION_TIME": 3,
    "MIN_CURRENT": 4,
    "MAX_CURRENT": 5,
    "MIN_POWER": 6,
    "MAX_POWER": 7,
}
_PRICED: Final = (
    Dimension.ENERGY,
    Dimension.TIME,
    Dimension.PARKING_TIME,
    Dimension.RESERVATION_TIME,
)
_FACTS_FIRST_SLOT: Final = len(_PRICED)

Volumes = tuple[tuple[Dimension, Decimal], ...]


class OrderedPeriods(msgspec.Struct, frozen=True, gc=False):
    """A CDR's periods in time order, with their facts, and what the whole session tells the
    tariff. (Not ``schemas.ocpi.session.Session``, the OCPI Sessions module's object.)"""

    periods: tuple[SessionPeriod, ...]
    reservation_expired: bool  # reserved, and never charged or parked
    has_priced_volume: bool  # some ENERGY/TIME/PARKING/RESERVATION volume is > 0


def _canonical(volumes: list[tuple[Dimension, Decimal]]) -> Volumes:
    """Volumes summed per dimension (in the order sent) and put in ``_PRICED`` order."""
    summed: dict[Dimension, Decimal] = {}
    for dimension, volume in volumes:
        previous = summed.get(dimension)
        summed[dimension] = volume if previous is None else previous + volume
    return tuple((dimension, summed[dimension]) for dimension in _PRICED if dimension in summed)


def _readings(
    dimensions: Iterable[CdrDimension], credit: bool, cdr_id: str, position: int
) -> tuple[Volumes, list[Decimal | None]]:
    """One period's priced volumes (a type sent twice is summed; the result is independent of
    the order of dimensions) and its MIN/MAX_CURRENT, MIN/MAX_POWER facts (the last wins)."""
    volumes: list[tuple[Dimension, Decimal]] = []
    facts: list[Decimal | None] = [None, None, None, None]
    canonical, last_slot = True, -1
    for measured in dimensions:
        kind = measured.type  # a str Enum: hashes and compares as its OCPI string
        slot = _SLOT.get(kind)
        if slot is None:
            continue
        volume = measured.volume
        if slot >= _FACTS_FIRST_SLOT:
            facts[slot - _FACTS_FIRST_SLOT] = volume
            continue
        if volume < ZERO:
            if not credit:
                raise NegativeVolume(f"CDR {cdr_id!r} period {position} has {kind} volume {volume}")
            volume = -volume
        canonical = canonical and slot > last_slot
        last_slot = slot
        volumes.append((_PRICED[slot], volume))
    return (tuple(volumes) if canonical else _canonical(volumes)), facts


def order_periods(cdr: Cdr, zone: ZoneInfo | None, credit: bool) -> OrderedPeriods:
    """The CDR's periods in time order with their facts (``zone`` None: no local time used)."""
    cdr_start, cdr_end = cdr.start_date_time, cdr.end_date_time
    if cdr_end < cdr_start:
        raise EndBeforeStart(
            f"CDR {cdr.id!r} ends {cdr_end.isoformat()} before it starts {cdr_start.isoformat()}"
        )
    raw = cdr.charging_periods
    count = len(raw)
    if count > RATING_PERIODS_MAX:
        raise PeriodsLimitExceeded(f"CDR {cdr.id!r} has {count} charging periods")
    starts = [p.start_date_time for p in raw]
    order = sorted(range(count), key=starts.__getitem__)
    session_start = min(cdr_start, starts[order[0]])
    energy_so_far = ZERO
    periods: list[SessionPeriod] = []
    reserved = active = priced = False
    for rank, position in enumerate(order):
        period = raw[position]
        start = starts[position]
        end = starts[order[rank + 1]] if rank + 1 < count else cdr_end
        volumes, facts = _readings(period.dimensions, credit, cdr.id, position)
        for dimension, volume in volumes:
            if volume > ZERO:
                priced = True
                active = active or dimension is not Dimension.RESERVATION_TIME
        # In _PRICED order, energy comes first and a reservation last.
        is_reservation = bool(volumes) and volumes[-1][0] is Dimension.RESERVATION_TIME
        reserved = reserved or is_reservation
        if zone is None:
            local_second, local_date, weekday = 0, None, start.weekday()
        else:
            local = start.astimezone(zone)
            local_second = local.hour * 3600 + local.minute * 60 + local.second
            local_date, weekday = local.date(), local.weekday()
        periods.append(
            tuple.__new__(  # SessionPeriod(...) without the per-field keyword handling
                SessionPeriod,
                (
                    position,
                    start,
                    max(end, start),
                    period.tariff_id,
                    volumes,
                    is_reservation,
                    local_second,
                    local_date,
                    weekday,
                    energy_so_far,  # energy charged before this period
                    (start - session_start) // _MICROSECOND,
                    *facts,  # min_current, max_current, min_power, max_power
                ),
            )
        )
        if volumes and volumes[0][0] is Dimension.ENERGY:
            energy_so_far += volumes[0][1]
    return OrderedPeriods(
        periods=tuple(periods),
        reservation_expired=reserved and not active,
        has_priced_volume=priced,
    )
