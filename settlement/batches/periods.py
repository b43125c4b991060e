"""Settlement period boundaries: day, ISO week or calendar month in the settlement time zone.

A period is [start, end) between two local midnights of the settlement time zone (UTC by
default, ``ROAMCLEAR_SETTLEMENT_TZ``), so a DST change makes a day 23 or 25 hours long.
Each kind is defined once, in ``GRID``: how Python truncates a local time to its period's
start, the next start, and the ``date_trunc`` field that does the same in PostgreSQL; the
closer's SQL is rendered from it (``period_start_sql``), and a test holds the two equal over
many zones and instants.

    >>> from datetime import datetime, UTC
    >>> from schemas.hub.agreement import SettlementPeriod as P
    >>> week = period_of(datetime(2025, 3, 30, 23, 30, tzinfo=UTC), P.WEEKLY, "Europe/Amsterdam")
    >>> week.start.isoformat(), week.end.isoformat()   # Monday 31 March, CEST
    ('2025-03-30T22:00:00+00:00', '2025-04-06T22:00:00+00:00')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from schemas.hub.agreement import SettlementPeriod

_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class GridRule:
    """One kind of settlement period, in both languages."""

    sql_unit: str  # the ``date_trunc`` field (PostgreSQL weeks start on Monday, as ISO)
    truncate: Callable[[datetime], datetime]  # a local time -> the local day its period starts
    step: Callable[[datetime], datetime]  # a period's local start -> the next one's local day


GRID: Final = {
    SettlementPeriod.DAILY: GridRule("day", lambda local: local, lambda start: start + _DAY),
    SettlementPeriod.WEEKLY: GridRule(
        "week",
        lambda local: local - timedelta(days=local.weekday()),
        lambda start: start + 7 * _DAY,
    ),
    SettlementPeriod.MONTHLY: GridRule(
        "month",
        lambda local: local.replace(day=1),
        lambda start: (start.replace(day=1) + 32 * _DAY).replace(day=1),
    ),
}
assert set(GRID) == set(SettlementPeriod), "every settlement period kind is on the grid"


def period_start_sql(kind: str, moment: str, time_zone: str) -> str:
    """SQL for ``period_start(moment, kind, time_zone)``, the arguments SQL expressions
    (``kind`` a period kind's text, as ``ledger_posting.settlement_period`` holds it)."""
    units = " ".join(f"WHEN '{k.value}' THEN '{rule.sql_unit}'" for k, rule in GRID.items())
    return f"date_trunc(CASE {kind} {units} END, {moment}, {time_zone})"


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        assert self.start.tzinfo is not None and self.end > self.start, self


def _local_midnight(day: datetime, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def period_start(moment: datetime, kind: SettlementPeriod, time_zone: str) -> datetime:
    """Start (UTC) of the period of ``kind`` containing ``moment`` in ``time_zone``."""
    assert moment.tzinfo is not None, "settlement works on aware datetimes"
    zone = ZoneInfo(time_zone)
    return _local_midnight(GRID[kind].truncate(moment.astimezone(zone)), zone)


def following_start(start: datetime, kind: SettlementPeriod, time_zone: str) -> datetime:
    """Start of the period after the one starting at ``start``."""
    zone = ZoneInfo(time_zone)
    return _local_midnight(GRID[kind].step(start.astimezone(zone)), zone)


def period_of(moment: datetime, kind: SettlementPeriod, time_zone: str) -> Period:
    start = period_start(moment, kind, time_zone)
    return Period(start, following_start(start, kind, time_zone))


def closable_before(
    as_of: datetime, grace: timedelta, kind: SettlementPeriod, time_zone: str
) -> datetime:
    """Periods starting before this instant have ended at least ``grace`` before ``as_of``.

    A period [s, e) closes once e + grace <= as_of, i.e. once e <= the start of the period
    containing as_of - grace, i.e. s < that start.
    """
    return period_start(as_of - grace, kind, time_zone)


def utc_unless_offset(moment: datetime) -> datetime:
    """The one rule for a ``from``/``to`` given by a person or a client (CLI and finance API):
    a date or a time without an offset is UTC, never the database session's zone or the
    host's. ``2025-05-01`` is 2025-05-01T00:00:00+00:00; ``…T06:00:00+02:00`` stays as given.
    """
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
