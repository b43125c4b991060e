"""Period labels a person writes and a partner's file carries: a month, an ISO week or a day.

    2026-03      the calendar month March 2026
    2026-W10     ISO week 10 of 2026 (Monday to Sunday)
    2026-03-04   the day 4 March 2026

A CDR belongs to the period that holds its end (the value time of its postings, as the
settlement closer decides), in the settlement time zone (``ROAMCLEAR_SETTLEMENT_TZ``, UTC by
default), on the grid of settlement.batches.periods: so `--period 2026-03` means what a
March statement means.

    >>> from datetime import datetime, UTC
    >>> label = PeriodLabel.parse("2026-w10")
    >>> label.text, label.kind.value
    ('2026-W10', 'WEEKLY')
    >>> window = label.window("UTC")
    >>> window.start.isoformat(), window.end.isoformat()
    ('2026-03-02T00:00:00+00:00', '2026-03-09T00:00:00+00:00')
    >>> end = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    >>> PeriodLabel.of(end, label.kind, "Europe/Amsterdam").text
    '2026-W14'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from schemas.hub.agreement import SettlementPeriod
from settlement.batches.periods import Period, period_of

_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK: Final = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
PERIOD_FORMS: Final = "YYYY-MM (a month), YYYY-Www (an ISO week) or YYYY-MM-DD (a day)"


@dataclass(frozen=True, slots=True)
class PeriodLabel:
    """A period by its label; `first_day` is its first local day."""

    kind: SettlementPeriod
    first_day: date

    @classmethod
    def parse(cls, text: str) -> PeriodLabel:
        """`2026-03`, `2026-W10` or `2026-03-04` (any case); ValueError saying why."""
        value = text.strip().upper()
        try:
            if match := _MONTH.match(value):
                return cls(SettlementPeriod.MONTHLY, date(int(match[1]), int(match[2]), 1))
            if match := _WEEK.match(value):
                monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
                return cls(SettlementPeriod.WEEKLY, monday)
            if match := _DAY.match(value):
                day = date(int(match[1]), int(match[2]), int(match[3]))
                return cls(SettlementPeriod.DAILY, day)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a period: {exc}") from None
        raise ValueError(f"{text!r} is not a period: write {PERIOD_FORMS}")

    @classmethod
    def of(cls, moment: datetime, kind: SettlementPeriod, time_zone: str) -> PeriodLabel:
        """The label of the period of `kind` that holds `moment` in `time_zone`."""
        start = period_of(moment, kind, time_zone).start
        return cls(kind, start.astimezone(ZoneInfo(time_zone)).date())

    @property
    def text(self) -> str:
        if self.kind is SettlementPeriod.MONTHLY:
            return f"{self.first_day:%Y-%m}"
        if self.kind is SettlementPeriod.WEEKLY:
            year, week, _ = self.first_day.isocalendar()
            return f"{year:04d}-W{week:02d}"
        return self.first_day.isoformat()

    def window(self, time_zone: str) -> Period:
        """[start, end) in UTC: between the local midnights of the settlement time zone."""
        local = datetime(
            self.first_day.year,
            self.first_day.month,
            self.first_day.day,
            tzinfo=ZoneInfo(time_zone),
        )
        return period_of(local.astimezone(UTC), self.kind, time_zone)

    def __str__(self) -> str:
        return self.text
