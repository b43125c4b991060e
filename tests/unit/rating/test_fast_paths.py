"""The rating hot path's shortcuts give exactly what the plain forms give.

- ``compile_predicate(r)`` (a closure per element) agrees with ``holds(r, period)``;
- the rating results, msgspec Structs, are as frozen and compare as the dataclasses did;
- the power-of-ten step shortcut only skips ``round_up_to_step`` where it returns the total.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.money import RATING_CONTEXT, rating_context, round_up_to_step
from settlement.rating import Dimension
from settlement.rating.compile import _power_of_ten_exponent
from settlement.rating.model import CompiledRestrictions, ReservationKind, SessionPeriod, TariffRef
from settlement.rating.restrictions import compile_predicate, holds
from settlement.rating.results import (
    Comparison,
    ComponentCharge,
    Cost,
    CostTotals,
    DeclaredTotals,
    PeriodCharge,
    RatedCdr,
)

D = Decimal
FAST = settings(max_examples=600, deadline=None)

# Few distinct values, shared by limits and facts, so that boundaries (equal values) are hit.
seconds_of_day = st.sampled_from([0, 1, 3600, 43_199, 43_200, 72_000, 86_399, 86_400])
small = st.sampled_from([D("0"), D("0.0"), D("5"), D("5.00"), D("11"), D("22.5")])
optional_small = st.none() | small
days = st.dates(min_value=date(2024, 1, 14), max_value=date(2024, 1, 17))
durations_us = st.sampled_from([0, 1, 3_600_000_000, 7_200_000_000])


RESTRICTION_FIELDS = [f.name for f in dataclasses.fields(CompiledRestrictions)][:-1]
"""Every field but ``needs_local_time`` (the last)."""
PERIOD = SessionPeriod(
    position=0,
    start=datetime(2024, 1, 15, 9, 0, tzinfo=UTC),
    end=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
    tariff_id=None,
    volumes=((Dimension.ENERGY, D("1")),),
    is_reservation=False,
    local_second=0,
    local_date=date(2024, 1, 15),
    weekday=0,
    energy_so_far_kwh=D("0"),
    duration_so_far_us=0,
    min_current=None,
    max_current=None,
    min_power=None,
    max_power=None,
)
RESTRICTION_KINDS = ("time", "dates", "weekdays", "kwh", "current", "power", "duration")


@st.composite
def restrictions(draw: st.DrawFn) -> CompiledRestrictions:
    """A few kinds of restriction at a time (the others absent), so that one that does not
    hold rarely hides another."""
    kinds = draw(st.sets(st.sampled_from(RESTRICTION_KINDS), min_size=1, max_size=3))

    def some(kind: str, values: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | values) if kind in kinds else None

    start_second, end_second = some("time", seconds_of_day), some("time", seconds_of_day)
    start_date, end_date = some("dates", days), some("dates", days)
    weekdays = some("weekdays", st.frozensets(st.integers(0, 6), min_size=1))
    return CompiledRestrictions(
        start_second=start_second,
        end_second=end_second,
        start_date=start_date,
        end_date=end_date,
        min_kwh=some("kwh", small),
        max_kwh=some("kwh", small),
        min_current=some("current", small),
        max_current=some("current", small),
        min_power=some("power", small),
        max_power=some("power", small),
        min_duration_us=some("duration", durations_us),
        max_duration_us=some("duration", durations_us),
        weekdays=weekdays,
        reservation=draw(st.none() | st.sampled_from(ReservationKind)),
        # as compile_restrictions derives it
        needs_local_time=bool(
            start_second is not None
            or end_second is not None
            or start_date is not None
            or end_date is not None
            or weekdays
        ),
    )


@st.composite
def periods(draw: st.DrawFn) -> SessionPeriod:
    return PERIOD._replace(
        local_second=draw(seconds_of_day.filter(lambda second: second < 86_400)),
        local_date=draw(days),
        weekday=draw(st.integers(0, 6)),
        energy_so_far_kwh=draw(small),
        duration_so_far_us=draw(durations_us),
        min_current=draw(optional_small),
        max_current=draw(optional_small),
        min_power=draw(optional_small),
        max_power=draw(optional_small),
    )


@FAST
@given(restriction=restrictions(), period=periods())
def test_compiled_predicate_agrees_with_holds(
    restriction: CompiledRestrictions, period: SessionPeriod
) -> None:
    predicate = compile_predicate(restriction)
    compiled = True if predicate is None else predicate(period)
    assert compiled == holds(restriction, period)


def test_time_of_day_predicate_agrees_on_every_boundary() -> None:
    """Exhaustively over a grid of window bounds and local times (wrapping, equal, open)."""
    seconds = [0, 1, 3600, 43_199, 43_200, 72_000, 86_399]
    bounds: list[int | None] = [None, *seconds, 86_400]
    for start_second, end_second in itertools.product(bounds, bounds):
        restriction = CompiledRestrictions(
            **dict.fromkeys(RESTRICTION_FIELDS),
            needs_local_time=start_second is not None or end_second is not None,
        )
        restriction = dataclasses.replace(
            restriction, start_second=start_second, end_second=end_second
        )
        predicate = compile_predicate(restriction)
        for second in seconds:
            period = PERIOD._replace(local_second=second)
            compiled = True if predicate is None else predicate(period)
            assert compiled == holds(restriction, period), (start_second, end_second, second)


def test_no_restrictions_compile_to_no_predicate() -> None:
    assert compile_predicate(None) is None
    everything_none = CompiledRestrictions(
        **dict.fromkeys(RESTRICTION_FIELDS), needs_local_time=False
    )
    assert compile_predicate(everything_none) is None


D1 = D("1.50")
D2 = D("0.4200")
COST = Cost(D1, D2)
FIELD_VALUES = {
    "charge": (Dimension.PARKING_TIME, 2, 1, D1, None, 300, D2, D("0.5"), COST, True),
    "period": (
        3,
        datetime(2024, 1, 15, 9, 0, tzinfo=UTC),
        datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
        "T1",
        (),
        (Dimension.TIME,),
    ),
    "totals": (COST, None, COST, None, Cost(D2, D1), None),
}


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        (Cost, (D1, D2)),
        (ComponentCharge, FIELD_VALUES["charge"]),
        (PeriodCharge, FIELD_VALUES["period"]),
        (CostTotals, FIELD_VALUES["totals"]),
    ],
)
def test_results_are_frozen_values(kind: type, values: tuple[Any, ...]) -> None:
    """Frozen msgspec Structs behave as the frozen dataclasses they replaced: equal by type
    and value, hashable, assignment refused; and, holding no cycle, not tracked by the GC."""
    value, same = kind(*values), kind(*values)
    assert value == same and hash(value) == hash(same) and value is not same
    assert value != values and value != DeclaredTotals(None, None, None, None, None, None)
    fields = msgspec.structs.fields(kind)
    assert [getattr(value, f.name) for f in fields] == list(values)
    with pytest.raises(AttributeError):
        setattr(value, fields[0].name, D1)
    assert not gc.is_tracked(value)


def test_results_repr_as_dataclasses_did() -> None:
    assert repr(Cost(D1, D2)) == "Cost(excl_vat=Decimal('1.50'), incl_vat=Decimal('0.4200'))"
    rated = RatedCdr(
        cdr_id="CDR1",
        currency="EUR",
        credit=False,
        time_zone=None,
        tariff=TariffRef("T1", "DE", "ALL", None, "abc"),
        periods=(),
        totals=CostTotals(*FIELD_VALUES["totals"]),
        exact_totals=CostTotals(*FIELD_VALUES["totals"]),
        price_limit=None,
        declared=DeclaredTotals(None, None, None, None, None, None),
        comparison=Comparison(D("0.01"), (), True),
    )
    assert repr(rated).startswith("RatedCdr(cdr_id='CDR1', currency='EUR', credit=False, ")
    assert "comparison=Comparison(tolerance=Decimal('0.01'), fields=(), within_tolerance=True)" in (
        repr(rated)
    )


@pytest.mark.parametrize(
    ("step_size_wh", "exponent"),
    [
        (1, -3),
        (10, -2),
        (100, -1),
        (1000, 0),
        (10_000, 1),
        (0, None),
        (2, None),
        (300, None),
        (101, None),
        (110, None),
        (500, None),
    ],
)
def test_power_of_ten_steps(step_size_wh: int, exponent: int | None) -> None:
    assert _power_of_ten_exponent(step_size_wh) == exponent


@FAST
@given(
    total=st.decimals(min_value=D("0"), max_value=D("100000"), places=4, allow_nan=False),
    step_size_wh=st.sampled_from([1, 10, 100, 1000, 10_000]),
)
def test_power_of_ten_shortcut_only_skips_a_no_op(total: Decimal, step_size_wh: int) -> None:
    """Where the shortcut applies (the total's exponent >= the step's), rounding up to the step
    gives the total back, so no volume is added."""
    exponent = _power_of_ten_exponent(step_size_wh)
    assert exponent is not None
    step_kwh = RATING_CONTEXT.divide(D(step_size_wh), D(1000))
    total_exponent = total.as_tuple().exponent
    assert isinstance(total_exponent, int)
    with rating_context():
        rounded = round_up_to_step(total, step_kwh)
    if total_exponent >= exponent:
        assert rounded == total
