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

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from schemas.ocpi.cdr import Cdr, ChargingPeriod
from settlement.money import ZERO
from settlement.rating.errors import EndBeforeStart, NegativeVolume, PeriodsLimitExceeded
from settlement.rating.model import Dimension, SessionPeriod

RATING_PERIODS_MAX: Final = 10_000
"""Charging periods rated per CDR (the schema allows as many; this bounds rating work)."""

_MICROSECOND: Final = timedelta(microseconds=1)

_PRICED: Final = {
    "ENERGY": Dimension.ENERGY,
    "TIME": Dimension.TIME,
    "PARKING_TIME": Dimension.PARKING_TIME,
    "RESERVATION_TIME": Dimension.RESERVATION_TIME,
}
_FACTS: Final = frozenset({"MIN_CURRENT", "MAX_CURRENT", "MIN_POWER", "MAX_POWER"})
_ACTIVITY: Final = frozenset({Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME})
_ORDER: Final = tuple(Dimension)  # a fixed order of priced dimensions within a period


@dataclass(frozen=True, slots=True)
class Session:
    """The periods of a CDR and what the whole session tells the tariff."""

    periods: tuple[SessionPeriod, ...]
    reservation_expired: bool  # reserved, and never charged or parked
    has_priced_volume: bool  # some ENERGY/TIME/PARKING/RESERVATION volume is > 0


def _period_volumes(
    period: ChargingPeriod, credit: bool, cdr_id: str, position: int
) -> tuple[dict[Dimension, Decimal], dict[str, Decimal]]:
    """Priced volumes (summed when a type repeats) and current/power facts of one period.
    A dict keyed by type makes the result independent of the order of dimensions."""
    volumes: dict[Dimension, Decimal] = {}
    facts: dict[str, Decimal] = {}
    for measured in period.dimensions:
        kind = measured.type  # a str Enum: hashes and compares as its OCPI string
        volume = measured.volume
        dimension = _PRICED.get(kind)
        if dimension is not None:
            if volume < ZERO:
                if not credit:
                    raise NegativeVolume(
                        f"CDR {cdr_id!r} period {position} has {kind} volume {volume}"
                    )
                volume = -volume
            previous = volumes.get(dimension)
            volumes[dimension] = volume if previous is None else previous + volume
        elif kind in _FACTS:
            facts[kind] = volume
    return volumes, facts


def _local_facts(start: datetime, zone: ZoneInfo | None) -> tuple[int, date | None, int]:
    if zone is None:
        return 0, None, start.weekday()
    local = start.astimezone(zone)
    return local.hour * 3600 + local.minute * 60 + local.second, local.date(), local.weekday()


def build_session(cdr: Cdr, zone: ZoneInfo | None, credit: bool) -> Session:
    """The CDR's periods in time order with their facts (``zone`` None: no local time used)."""
    if cdr.end_date_time < cdr.start_date_time:
        raise EndBeforeStart(
            f"CDR {cdr.id!r} ends {cdr.end_date_time.isoformat()} before it starts "
            f"{cdr.start_date_time.isoformat()}"
        )
    raw = cdr.charging_periods
    if len(raw) > RATING_PERIODS_MAX:
        raise PeriodsLimitExceeded(f"CDR {cdr.id!r} has {len(raw)} charging periods")
    starts = [p.start_date_time for p in raw]
    order = sorted(range(len(raw)), key=starts.__getitem__)
    session_start = min(cdr.start_date_time, raw[order[0]].start_date_time)
    energy_so_far = ZERO
    periods: list[SessionPeriod] = []
    reserved = active = priced = False
    for rank, position in enumerate(order):
        period = raw[position]
        start = period.start_date_time
        end = raw[order[rank + 1]].start_date_time if rank + 1 < len(order) else cdr.end_date_time
        volumes, measured = _period_volumes(period, credit, cdr.id, position)
        local_second, local_date, weekday = _local_facts(start, zone)
        duration_so_far_us = (start - session_start) // _MICROSECOND
        energy_before = energy_so_far
        energy = volumes.get(Dimension.ENERGY)
        if energy is not None:
            energy_so_far += energy
        is_reservation = Dimension.RESERVATION_TIME in volumes
        reserved = reserved or is_reservation
        for dimension, volume in volumes.items():
            if volume > ZERO:
                priced = True
                active = active or dimension in _ACTIVITY
        periods.append(
            SessionPeriod(
                position=position,
                start=start,
                end=max(end, start),
                tariff_id=period.tariff_id,
                volumes=tuple((d, volumes[d]) for d in _ORDER if d in volumes),
                is_reservation=is_reservation,
                local_second=local_second,
                local_date=local_date,
                weekday=weekday,
                energy_so_far_kwh=energy_before,
                duration_so_far_us=duration_so_far_us,
                min_current=measured.get("MIN_CURRENT"),
                max_current=measured.get("MAX_CURRENT"),
                min_power=measured.get("MIN_POWER"),
                max_power=measured.get("MAX_POWER"),
            )
        )
    return Session(
        periods=tuple(periods),
        reservation_expired=reserved and not active,
        has_priced_volume=priced,
    )
