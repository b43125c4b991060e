"""Charging sessions as timestamps and volumes, consistent by construction.

A session at a site: a start (local hour weighted by when people charge), a charging span,
maybe a parking span after it. It is cut into charging periods wherever the site's tariff may
change its price (local time-of-day and weekday boundaries, mod_cdrs ChargingPeriod), where the
charging ends, and, for fast chargers, where the power tapers; at most `PERIODS_MAX` periods.

Every instant is a multiple of `GRID_S` = 9 seconds since the epoch. Because 3600 / 9 = 400,
every duration is then an exact decimal number of hours with 4 decimals (2 h 14 min 33 s =
8073 s = 2.2425 h), so period volumes add up exactly to `total_time` = end - start, and no
rounding is needed anywhere. Tariff boundaries are whole or half hours in zones with
whole or half-hour offsets, so they lie on the grid too. Energy is integer Wh:
average power (W) x seconds / 3600, rounded down.

    start 16:48:09 local, charging until 18:12:00, parking until 18:30:00, tariff boundary 17:00
    -> [16:48:09 charging 0.1975 h], [17:00:00 charging 1.2000 h], [18:12:00 parking 0.3000 h]
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from pipeline.simulate.locations import Site

GRID_S: Final = 9
PERIODS_MAX: Final = 6
TEN_THOUSANDTHS_PER_STEP: Final = 25  # 9 s = 0.0025 h
BOUNDARY_DAYS_CACHED_MAX: Final = 65_536  # (zone, day, tariff marks) combinations
SESSION_LEAD_MAX_S: Final = 18 * 3600  # longest session plus the CPO's delay to send the CDR

# Relative weight of each local start hour (AC: commuters and overnight; DC: daytime trips).
_AC_HOUR_WEIGHTS: Final = (1, 1, 1, 1, 1, 2, 4, 8, 9, 7, 5, 4, 4, 4, 4, 5, 7, 9, 9, 8, 6, 4, 3, 2)
_DC_HOUR_WEIGHTS: Final = (1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 9, 9, 8, 8, 9, 9, 8, 6, 4, 3, 2, 1)
_ONBOARD_CHARGERS_W: Final = (3_700, 7_400, 11_000, 11_000, 22_000)


@dataclass(frozen=True, slots=True)
class PeriodShape:
    """One charging period: [start_s, end_s) in epoch seconds; parking when energy_wh is None."""

    start_s: int
    end_s: int
    energy_wh: int | None

    @property
    def hours(self) -> Decimal:
        return hours(self.end_s - self.start_s)

    @property
    def energy_kwh(self) -> Decimal:
        assert self.energy_wh is not None
        return Decimal(self.energy_wh).scaleb(-3)


@dataclass(frozen=True, slots=True)
class SessionShape:
    """A session's span and periods, in time order."""

    start_s: int
    end_s: int
    periods: tuple[PeriodShape, ...]

    @property
    def total_hours(self) -> Decimal:
        return hours(self.end_s - self.start_s)

    @property
    def energy_kwh(self) -> Decimal:
        return Decimal(sum(p.energy_wh or 0 for p in self.periods)).scaleb(-3)

    @property
    def parking_hours(self) -> Decimal:
        return hours(sum(p.end_s - p.start_s for p in self.periods if p.energy_wh is None))


def hours(seconds: int) -> Decimal:
    """Seconds on the grid as exact hours with 4 decimals (integer arithmetic, no context)."""
    assert seconds % GRID_S == 0, seconds
    return Decimal(seconds // GRID_S * TEN_THOUSANDTHS_PER_STEP).scaleb(-4)


def _weighted(rng: random.Random, weights: tuple[int, ...]) -> int:
    """An index drawn with integer weights (no floats)."""
    ticket = rng.randrange(sum(weights))
    for index, weight in enumerate(weights):
        ticket -= weight
        if ticket < 0:
            return index
    raise AssertionError("unreachable")  # pragma: no cover


def _grid(seconds: int) -> int:
    return seconds - seconds % GRID_S


def _span(rng: random.Random, low_s: int, high_s: int) -> int:
    return GRID_S * rng.randint(low_s // GRID_S, high_s // GRID_S)


@functools.lru_cache(maxsize=BOUNDARY_DAYS_CACHED_MAX)
def _day_boundaries(zone: ZoneInfo, day: date, marks: tuple[int, ...]) -> tuple[int, ...]:
    instants = []
    for mark in marks:
        local = datetime.combine(day, time(mark // 3600, mark % 3600 // 60), tzinfo=zone)
        instant = int(local.timestamp())
        assert instant % GRID_S == 0, "tariff boundaries must lie on the grid"
        instants.append(instant)
    return tuple(instants)


def _boundary_instants(
    zone: ZoneInfo, marks: tuple[int, ...], start_s: int, end_s: int
) -> set[int]:
    """Epoch seconds strictly inside (start_s, end_s) where a local boundary mark falls."""
    if not marks:
        return set()
    day = datetime.fromtimestamp(start_s, zone).date()
    last = datetime.fromtimestamp(end_s, zone).date()
    instants: set[int] = set()
    while day <= last:
        instants.update(i for i in _day_boundaries(zone, day, marks) if start_s < i < end_s)
        day += timedelta(days=1)
    return instants


def _durations(rng: random.Random, site: Site, local_start_s: int) -> tuple[int, int]:
    """(charging, parking) seconds, on the grid."""
    if site.is_dc:
        charging = _span(rng, 8 * 60, 55 * 60)
        parking = _span(rng, 60, 25 * 60) if rng.randrange(5) == 0 else 0
        return charging, parking
    overnight = local_start_s >= 18 * 3600
    charging = _span(rng, 20 * 60, (10 if overnight else 6) * 3600)
    parking = _span(rng, 5 * 60, 3 * 3600) if rng.randrange(2) else 0
    return charging, parking


def _power_w(rng: random.Random, site: Site) -> int:
    if site.is_dc:
        return rng.randint(30_000, min(site.power_max_w, 180_000))
    onboard = min(rng.choice(_ONBOARD_CHARGERS_W), site.power_max_w)
    return onboard * rng.randint(80, 100) // 100


@dataclass(frozen=True, slots=True)
class SessionTemplate:
    """A session in local terms (start time of day, durations, power): placed on a day, it
    becomes a `SessionShape`. Templates are reused so that prices can be reused (see
    `generator`), like a driver's routine: same charger, same time, same car."""

    local_start_s: int  # seconds since local midnight
    charging_s: int
    parking_s: int
    power_w: int  # average charging power
    taper_s: int | None  # fast charging: the power drops this long after the start


def draw_template(rng: random.Random, site: Site) -> SessionTemplate:
    """A realistic session at `site`: a weighted local start hour, durations and power."""
    hour = _weighted(rng, _DC_HOUR_WEIGHTS if site.is_dc else _AC_HOUR_WEIGHTS)
    local_start = hour * 3600 + rng.randrange(3600)
    charging_s, parking_s = _durations(rng, site, local_start)
    taper = None
    if site.is_dc and charging_s >= 20 * 60:  # the battery fills up: power tapers off
        taper = _span(rng, 10 * 60, charging_s - 5 * 60)
    return SessionTemplate(local_start, charging_s, parking_s, _power_w(rng, site), taper)


def place_session(template: SessionTemplate, site: Site, day: date) -> SessionShape:
    """The template's session on a local day, cut into periods (see the module docstring)."""
    local_start = template.local_start_s
    local = datetime.combine(day, time(local_start // 3600), tzinfo=site.zone)
    start = _grid(int(local.timestamp()) + local_start % 3600)
    charge_end = start + template.charging_s
    end = charge_end + template.parking_s
    cuts = _boundary_instants(site.zone, site.boundaries, start, end)
    if charge_end < end:
        cuts.add(charge_end)
    if template.taper_s is not None:
        cuts.add(start + template.taper_s)
    instants = [start, *sorted(cuts), end][: PERIODS_MAX + 1]
    periods = []
    for index in range(len(instants) - 1):
        period_start, period_end = instants[index], instants[index + 1]
        energy = None
        if period_start < charge_end:
            taper = 100 - 15 * index if site.is_dc else 100
            energy = template.power_w * taper // 100 * (period_end - period_start) // 3600
        periods.append(PeriodShape(period_start, period_end, energy))
    return SessionShape(start, instants[-1], tuple(periods))


def session_days(site: Site, earliest_s: int, latest_s: int) -> tuple[date, date]:
    """First and last local day on which any session start lies in [earliest_s, latest_s)."""
    first = datetime.fromtimestamp(earliest_s, site.zone).date() + timedelta(days=1)
    last = datetime.fromtimestamp(latest_s, site.zone).date() - timedelta(days=1)
    return first, last


def pricing_signature(site: Site, shape: SessionShape) -> tuple[object, ...]:
    """What the site's tariff can see of a session: per period its local start second (and
    weekday, if the tariff has weekday rules), duration and energy. Sessions with equal
    signatures at one site have equal prices: the scenario's tariffs have no date, power or
    current restrictions (asserted in `tariffs.boundaries`)."""
    zone = site.zone
    parts: list[object] = [id(site.tariff), zone.key]
    for period in shape.periods:
        local = datetime.fromtimestamp(period.start_s, zone)
        second = local.hour * 3600 + local.minute * 60 + local.second
        weekday = local.weekday() if site.uses_weekdays else -1
        parts.append((second, weekday, period.end_s - period.start_s, period.energy_wh))
    return tuple(parts)
