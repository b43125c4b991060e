"""The period grid in PostgreSQL is the Python one: ``period_start_sql``, rendered from
``settlement.batches.periods.GRID``, gives ``period_start`` for every kind, in zones with and
without DST, with half-hour and 45-minute offsets, at and around every boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.hub.agreement import SettlementPeriod
from settlement.batches.periods import following_start, period_start, period_start_sql
from settlement.store.db import connect

pytestmark = pytest.mark.integration

ZONES = (
    "UTC",
    "Europe/Amsterdam",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
)
_ONE_US = timedelta(microseconds=1)


def _cases() -> list[tuple[datetime, SettlementPeriod, str]]:
    moments = [
        datetime(2024, 1, 1, tzinfo=UTC) + k * timedelta(hours=7, minutes=13) for k in range(2500)
    ]
    cases = []
    for zone in ZONES:
        for kind in SettlementPeriod:
            for moment in moments[len(zone) % 5 :: 5]:  # a fifth per zone, spread
                start = period_start(moment, kind, zone)
                end = following_start(start, kind, zone)
                for probe in (moment, start, start - _ONE_US, end, end - _ONE_US):
                    cases.append((probe, kind, zone))
    return cases


def test_sql_period_start_is_the_python_one(database_url: str) -> None:
    cases = _cases()
    query = f"""
        SELECT {period_start_sql("k", "m", "z")} AS start
          FROM unnest(%s::timestamptz[], %s::text[], %s::text[]) WITH ORDINALITY AS x(m, k, z, n)
         ORDER BY n
    """
    with connect(database_url) as conn:
        conn.execute("SET TimeZone = 'Asia/Tokyo'")  # the session's zone must not matter
        rows = conn.execute(
            query,
            ([m for m, _, _ in cases], [k.value for _, k, _ in cases], [z for _, _, z in cases]),
        ).fetchall()
    assert len(rows) == len(cases) > 20_000
    wrong = [
        (case, row["start"])
        for case, row in zip(cases, rows, strict=True)
        if row["start"] != period_start(*case)
    ]
    assert not wrong, wrong[:5]
