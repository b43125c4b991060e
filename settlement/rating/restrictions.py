"""Does a tariff element's TariffRestrictions hold for a charging period?

mod_tariffs 11.4.6 (TariffRestrictions): every given restriction must hold (logical AND).
Each is evaluated once per charging period, at its start: the CDR module obliges the CPO to
start a new period whenever another price component becomes active (mod_cdrs "ChargingPeriod").

    >>> _time_of_day_holds(72000, 86400, 77400)   # 20:00-00:00 holds at 21:30
    True
    >>> _time_of_day_holds(79200, 21600, 3600)    # 22:00-06:00 holds at 01:00
    True

Decisions where the text leaves room (each documented in the report and tests):

- Time of day: ``start_time`` inclusive, ``end_time`` exclusive; ``end_time`` "00:00" is the
  end of the day; ``end_time < start_time`` wraps past midnight; equal times mean all day.
- ``day_of_week``, ``start_date``/``end_date`` are tested on the local date of the period
  start, also inside a window that wraps past midnight (Friday 22:00-06:00 does not cover
  Saturday 02:00 unless Saturday is listed).
- ``min_kwh``/``max_kwh``: energy charged in the session before the period starts.
- ``min_duration``/``max_duration``: time from the session start to the period start.
- ``min_current``/``min_power`` compare with the period's MIN_CURRENT/MIN_POWER (the current
  must not drop below the limit during the period), ``max_*`` with MAX_CURRENT/MAX_POWER
  ("less than", strictly). A period that reports only one of min/max uses it for both. A
  period that reports neither does not satisfy a current/power restriction: without the
  measurement the element cannot be shown to be active, so a later element prices it.

The engine does not call ``holds`` per period: ``compile_predicate`` turns an element's
restrictions into one closure at compile time that tests only the restrictions given
(``CompiledElement.holds``). ``holds`` is the reference it must agree with
(tests/unit/rating/test_fast_paths.py).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from settlement.rating.model import CompiledRestrictions, SessionPeriod

Predicate = Callable[[SessionPeriod], bool]
"""A compiled restriction test: ``holds(restrictions, period)`` as one closure per element."""


def _time_of_day_holds(start: int | None, end: int | None, second: int) -> bool:
    if start is None:
        return end is None or second < end
    if end is None:
        return second >= start
    if start < end:
        return start <= second < end
    if start > end:
        return second >= start or second < end
    return True  # equal bounds: a 24-hour window


def _at_least(limit: Decimal | None, primary: Decimal | None, fallback: Decimal | None) -> bool:
    if limit is None:
        return True
    value = primary if primary is not None else fallback
    return value is not None and value >= limit


def _below(limit: Decimal | None, primary: Decimal | None, fallback: Decimal | None) -> bool:
    if limit is None:
        return True
    value = primary if primary is not None else fallback
    return value is not None and value < limit


def holds(restrictions: CompiledRestrictions, facts: SessionPeriod) -> bool:
    """True when every restriction given holds at the start of the period."""
    r = restrictions
    if r.needs_local_time:
        if (r.start_second is not None or r.end_second is not None) and not _time_of_day_holds(
            r.start_second, r.end_second, facts.local_second
        ):
            return False
        if r.weekdays is not None and facts.weekday not in r.weekdays:
            return False
        local_date = facts.local_date
        assert local_date is not None, "local date required by a date restriction"
        if r.start_date is not None and local_date < r.start_date:
            return False
        if r.end_date is not None and local_date >= r.end_date:
            return False
    if r.min_kwh is not None and facts.energy_so_far_kwh < r.min_kwh:
        return False
    if r.max_kwh is not None and facts.energy_so_far_kwh >= r.max_kwh:
        return False
    if r.min_duration_us is not None and facts.duration_so_far_us < r.min_duration_us:
        return False
    if r.max_duration_us is not None and facts.duration_so_far_us >= r.max_duration_us:
        return False
    return (
        _at_least(r.min_current, facts.min_current, facts.max_current)
        and _below(r.max_current, facts.max_current, facts.min_current)
        and _at_least(r.min_power, facts.min_power, facts.max_power)
        and _below(r.max_power, facts.max_power, facts.min_power)
    )


def _time_of_day_predicate(start: int | None, end: int | None) -> Predicate | None:
    """``_time_of_day_holds`` specialised to one window; None when the window is all day."""
    if start is None and end is None:
        return None
    if start is None:
        assert end is not None
        end_second = end
        return lambda facts: facts.local_second < end_second
    if end is None:
        start_second = start
        return lambda facts: facts.local_second >= start_second
    if start < end:
        low, high = start, end
        return lambda facts: low <= facts.local_second < high
    if start > end:
        low, high = start, end
        return lambda facts: facts.local_second >= low or facts.local_second < high
    return None  # equal bounds: a 24-hour window


def _local_predicates(r: CompiledRestrictions) -> list[Predicate]:
    tests: list[Predicate] = []
    time_of_day = _time_of_day_predicate(r.start_second, r.end_second)
    if time_of_day is not None:
        tests.append(time_of_day)
    weekdays = r.weekdays
    if weekdays is not None:
        tests.append(lambda facts: facts.weekday in weekdays)
    if r.start_date is not None or r.end_date is not None:
        start_date, end_date = r.start_date, r.end_date

        def dates(facts: SessionPeriod) -> bool:
            local_date = facts.local_date
            assert local_date is not None, "local date required by a date restriction"
            if start_date is not None and local_date < start_date:
                return False
            return end_date is None or local_date < end_date

        tests.append(dates)
    return tests


def _session_predicates(r: CompiledRestrictions) -> list[Predicate]:
    tests: list[Predicate] = []
    min_kwh, max_kwh = r.min_kwh, r.max_kwh
    if min_kwh is not None:
        tests.append(lambda facts: facts.energy_so_far_kwh >= min_kwh)
    if max_kwh is not None:
        tests.append(lambda facts: facts.energy_so_far_kwh < max_kwh)
    min_us, max_us = r.min_duration_us, r.max_duration_us
    if min_us is not None:
        tests.append(lambda facts: facts.duration_so_far_us >= min_us)
    if max_us is not None:
        tests.append(lambda facts: facts.duration_so_far_us < max_us)
    if r.min_current is not None or r.max_current is not None:
        min_a, max_a = r.min_current, r.max_current
        tests.append(
            lambda facts: (
                _at_least(min_a, facts.min_current, facts.max_current)
                and _below(max_a, facts.max_current, facts.min_current)
            )
        )
    if r.min_power is not None or r.max_power is not None:
        min_kw, max_kw = r.min_power, r.max_power
        tests.append(
            lambda facts: (
                _at_least(min_kw, facts.min_power, facts.max_power)
                and _below(max_kw, facts.max_power, facts.min_power)
            )
        )
    return tests


def compile_predicate(restrictions: CompiledRestrictions | None) -> Predicate | None:
    """``holds(restrictions, ·)`` as one closure testing only the restrictions given, or None
    when nothing is restricted (the element always applies). Built once per tariff version
    (``compile``): the engine then skips every absent restriction instead of testing it for
    None on each period. ``holds`` stays the readable reference; a property test checks that
    both agree."""
    if restrictions is None:
        return None
    tests = _local_predicates(restrictions) if restrictions.needs_local_time else []
    tests += _session_predicates(restrictions)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda facts: first(facts) and second(facts)
    every = tuple(tests)

    def all_hold(facts: SessionPeriod) -> bool:
        for test in every:  # noqa: SIM110 - a loop: all() over a generator costs twice as much
            if not test(facts):
                return False
        return True

    return all_hold
