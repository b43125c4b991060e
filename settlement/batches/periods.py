"""Settlement period boundaries: day, ISO week or calendar month in the settlement time zone.

A period is [start, end) between two local midnights of the settlement time zone (UTC by
default, ``ROAMCLEAR_SETTLEMENT_TZ``), so a DST change makes a day 23 or 25 hours long. The
same boundaries are computed in SQL by ``date_trunc(unit, value_time, zone)`` (the closer);
both must agree, and a test checks that they do.

    >>> from datetime import datetime, UTC
    >>> from schemas.hub.agreement import SettlementPeriod as P
    >>> week = period_of(datetime(2025, 3, 30, 23, 30, tzinfo=UTC), P.WEEKLY, "Europe/Amsterdam")
    >>> week.start.isoformat(), week.end.isoformat()   # Monday 31 March, CEST
    ('2025-03-30T22:00:00+00:00', '2025-04-06T22:00:00+00:00')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from schemas.hub.agreement import SettlementPeriod

SQL_UNIT: Final = {
    SettlementPeriod.DAILY: "day",
    SettlementPeriod.WEEKLY: "week",
    SettlementPeriod.MONTHLY: "month",
}
"""The ``date_trunc`` field of each period kind (PostgreSQL weeks start on Monday, as ISO)."""


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
    local = moment.astimezone(zone)
    if kind is SettlementPeriod.WEEKLY:
        local = local - timedelta(days=local.weekday())
    elif kind is SettlementPeriod.MONTHLY:
        local = local.replace(day=1)
    return _local_midnight(local, zone)


def following_start(start: datetime, kind: SettlementPeriod, time_zone: str) -> datetime:
    """Start of the period after the one starting at ``start``."""
    zone = ZoneInfo(time_zone)
    local = start.astimezone(zone)
    if kind is SettlementPeriod.DAILY:
        local = local + timedelta(days=1)
    elif kind is SettlementPeriod.WEEKLY:
        local = local + timedelta(days=7)
    else:
        local = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
    return _local_midnight(local, zone)


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
