"""TariffRestrictions, one rule per test (mod_tariffs 11.4.6)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pytest

from settlement.rating import rate_cdr
from tests.unit.rating.factories import cdr, component, element, period, tariff

D = Decimal
ZONE = "Europe/Berlin"


def _time_price(restrictions: Mapping[str, object], start: str, **volumes: str) -> Decimal:
    """Price of one 1-hour TIME period: 2.00 if the restricted element applies, else 1.00."""
    t = tariff(
        element(component("TIME", "2.00"), **restrictions), element(component("TIME", "1.00"))
    )
    rated = rate_cdr(cdr(period(start, time="1", **volumes)), t, time_zone=ZONE)
    return rated.totals.total_cost.excl_vat


@pytest.mark.parametrize(
    ("local_start_utc", "expected"),
    [
        ("2024-01-15T20:59:00Z", "1.0000"),  # 21:59 local, before the window
        ("2024-01-15T21:00:00Z", "2.0000"),  # 22:00 local, start inclusive
        ("2024-01-15T23:30:00Z", "2.0000"),  # 00:30 local, after midnight
        ("2024-01-16T04:59:00Z", "2.0000"),  # 05:59 local
        ("2024-01-16T05:00:00Z", "1.0000"),  # 06:00 local, end exclusive
    ],
)
def test_time_window_crossing_midnight(local_start_utc: str, expected: str) -> None:
    """mod_tariffs 11.4.6 TariffRestrictions start_time/end_time: "If end_time < start_time then
    the period wraps around to the next day"; start inclusive, end exclusive."""
    assert _time_price({"start_time": "22:00", "end_time": "06:00"}, local_start_utc) == D(expected)


@pytest.mark.parametrize(
    ("start", "expected"),
    [("2024-01-15T22:59:00Z", "2.0000"), ("2024-01-15T18:59:00Z", "1.0000")],
)
def test_end_time_midnight_is_end_of_day(start: str, expected: str) -> None:
    """mod_tariffs 11.4.6 TariffRestrictions end_time: "To stop at end of the day use: 00:00"."""
    assert _time_price({"start_time": "20:00", "end_time": "00:00"}, start) == D(expected)


def test_time_of_day_uses_local_time_not_utc() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions start_time: "local time, the time zone is defined in
    the time_zone field of the Location" - 16:30 UTC is 17:30 in Berlin in winter, 18:30 in
    summer."""
    evening = {"start_time": "18:00", "end_time": "20:00"}
    assert _time_price(evening, "2024-01-15T16:30:00Z") == D("1")
    assert _time_price(evening, "2024-07-15T16:30:00Z") == D("2")


def test_start_date_inclusive_end_date_exclusive() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions start_date (inclusive) / end_date (exclusive), in
    local time."""
    window = {"start_date": "2024-01-15", "end_date": "2024-01-16"}
    assert _time_price(window, "2024-01-14T23:00:00Z") == D("2")  # 00:00 local on the 15th
    assert _time_price(window, "2024-01-14T22:59:00Z") == D("1")
    assert _time_price(window, "2024-01-15T23:00:00Z") == D("1")  # 00:00 local on the 16th


def test_day_of_week_in_local_time() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions day_of_week: which days the element is active;
    Sunday 23:30 UTC is Monday 00:30 in Berlin."""
    weekend = {"day_of_week": ["SATURDAY", "SUNDAY"]}
    assert _time_price(weekend, "2024-01-14T22:00:00Z") == D("2")  # Sunday 23:00 local
    assert _time_price(weekend, "2024-01-14T23:30:00Z") == D("1")  # Monday 00:30 local


@pytest.mark.parametrize(("energy_before", "expected"), [("4.999", "1"), ("5", "2"), ("20", "1")])
def test_min_kwh_inclusive_max_kwh_exclusive(energy_before: str, expected: str) -> None:
    """mod_tariffs 11.4.6 TariffRestrictions min_kwh ("from this amount ... inclusive") and
    max_kwh ("until this amount ... exclusive"): energy charged so far in the session."""
    t = tariff(
        element(component("ENERGY", "2.00"), min_kwh="5", max_kwh="20"),
        element(component("ENERGY", "1.00")),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T10:00:00Z", energy=energy_before),
            period("2024-01-15T11:00:00Z", energy="1"),
            end="2024-01-15T12:00:00Z",
        ),
        t,
    )
    second = rated.periods[1].charges[0]
    assert second.price == D(expected)


@pytest.mark.parametrize(("offset_minutes", "expected"), [(29, "0"), (30, "0.25"), (60, "0.40")])
def test_min_duration_inclusive_max_duration_exclusive(offset_minutes: int, expected: str) -> None:
    """mod_tariffs 11.4.6 TariffRestrictions min_duration (inclusive) / max_duration
    (exclusive), as in the spec's max_duration example: free first 30 min, 0.25 then, 0.40
    after 60 min. Session duration so far at the period start."""
    t = tariff(
        element(component("ENERGY", "0.00"), max_duration=1800),
        element(component("ENERGY", "0.25"), max_duration=3600),
        element(component("ENERGY", "0.40")),
    )
    start = (
        f"2024-01-15T10:{offset_minutes:02d}:00Z" if offset_minutes < 60 else "2024-01-15T11:00:00Z"
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T10:00:00Z", energy="0"),
            period(start, energy="1"),
            end="2024-01-15T12:00:00Z",
        ),
        t,
    )
    assert rated.periods[1].charges[0].price == D(expected)


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ({"min_current": "16", "max_current": "16"}, "2"),  # below 32 A
        ({"min_current": "16", "max_current": "32"}, "1"),  # max reached 32: not below
        ({"max_current": "20"}, "2"),  # only the max reported: used for both
        ({}, "1"),  # no current reported: restriction cannot hold
    ],
)
def test_max_current_is_strict_on_the_period_maximum(
    volumes: dict[str, str], expected: str
) -> None:
    """mod_tariffs 11.4.6 TariffRestrictions max_current: active "when the EV is charging with
    less than the defined amount of current", no longer when it "raises above"."""
    assert _time_price({"max_current": "32"}, "2024-01-15T10:00:00Z", **volumes) == D(expected)


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ({"min_power": "32", "max_power": "48"}, "2"),  # at least 32 kW throughout
        ({"min_power": "31.9", "max_power": "48"}, "1"),  # dropped below during the period
    ],
)
def test_min_power_inclusive_on_the_period_minimum(volumes: dict[str, str], expected: str) -> None:
    """mod_tariffs 11.4.6 TariffRestrictions min_power: active at "more than, or equal to" the
    value, "no longer valid" when the power drops below it."""
    assert _time_price({"min_power": "32"}, "2024-01-15T10:00:00Z", **volumes) == D(expected)


def test_restrictions_are_a_logical_and() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions: "When more than one restriction is set, they are
    to be treated as a logical AND"."""
    both = {"min_current": "32", "day_of_week": ["SATURDAY"]}
    saturday = "2015-07-04T11:30:00Z"
    monday = "2015-06-29T07:30:00Z"
    assert _time_price(both, saturday, min_current="43", max_current="43") == D("2")
    assert _time_price(both, monday, min_current="43", max_current="43") == D("1")
    assert _time_price(both, saturday, min_current="16", max_current="16") == D("1")
