"""Plausibility checks on a schema-valid CDR, as the big roaming hubs apply them.

A CDR can conform to OCPI and still be impossible: a session that ends before it starts or
in the future, negative charged volumes, 5 MWh on one connector, totals that disagree with the
charging periods. Every violation is reported (not just the first), each with its JSON path.

    >>> limits = PlausibilityLimits()
    >>> limits.energy_kwh_max
    Decimal('1000')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import moneyed

from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.enums import CdrDimensionType
from schemas.validation import Violation

# Dimensions the hub prices: their volumes must not be negative (ENERGY may be negative in
# OCPI for energy fed back to the grid, but a charging CDR that books money must not be).
_PRICED = frozenset(
    {
        CdrDimensionType.ENERGY,
        CdrDimensionType.TIME,
        CdrDimensionType.PARKING_TIME,
        CdrDimensionType.RESERVATION_TIME,
    }
)


@dataclass(frozen=True, slots=True)
class PlausibilityLimits:
    """The bounds a CDR must keep (ROAMCLEAR_* settings feed these)."""

    energy_kwh_max: Decimal = Decimal("1000")
    clock_skew: timedelta = timedelta(minutes=5)  # partner clocks run a little ahead
    energy_tolerance_kwh: Decimal = Decimal("0.01")  # periods vs total_energy
    time_tolerance_h: Decimal = Decimal("0.0167")  # one minute, periods vs totals


def _hours(delta: timedelta) -> Decimal:
    return Decimal(int(delta.total_seconds() * 1_000_000)) / Decimal(3_600_000_000)


def check_cdr(
    cdr: Cdr, submitter: PartyRef, now: datetime, limits: PlausibilityLimits
) -> tuple[Violation, ...]:
    """Every plausibility violation of `cdr` submitted by `submitter`, at time `now`."""
    return tuple(_violations(cdr, submitter, now, limits))


def _violations(
    cdr: Cdr, submitter: PartyRef, now: datetime, limits: PlausibilityLimits
) -> Iterator[Violation]:
    if (submitter.country_code, submitter.party_id) != (cdr.country_code, cdr.party_id):
        yield Violation(
            path="country_code",
            rule=f"the submitter {submitter} does not own CDRs of "
            f"{cdr.country_code}*{cdr.party_id}",
            code="not_owner",
        )
    if cdr.end_date_time <= cdr.start_date_time:
        yield Violation(path="end_date_time", rule="must be after start_date_time", code="order")
    if cdr.end_date_time > now + limits.clock_skew:
        yield Violation(path="end_date_time", rule="must not be in the future", code="future")
    try:
        moneyed.get_currency(cdr.currency)
    except moneyed.CurrencyDoesNotExist:
        yield Violation(path="currency", rule="unknown ISO 4217 currency", code="currency")
    yield from _period_violations(cdr, limits)


def _period_violations(cdr: Cdr, limits: PlausibilityLimits) -> Iterator[Violation]:
    energy = parking = Decimal(0)
    previous_start: datetime | None = None
    for index, period in enumerate(cdr.charging_periods):
        path = f"charging_periods[{index}]"
        if not cdr.start_date_time <= period.start_date_time <= cdr.end_date_time:
            yield Violation(
                path=f"{path}.start_date_time",
                rule="must lie within the session (start_date_time..end_date_time)",
                code="period_outside_session",
            )
        if previous_start is not None and period.start_date_time < previous_start:
            yield Violation(
                path=f"{path}.start_date_time",
                rule="must not be before the previous period's start",
                code="period_order",
            )
        previous_start = period.start_date_time
        for dimension_index, dimension in enumerate(period.dimensions):
            if dimension.type in _PRICED and dimension.volume < 0:
                yield Violation(
                    path=f"{path}.dimensions[{dimension_index}].volume",
                    rule="must be >= 0",
                    code="negative_volume",
                )
            if dimension.type is CdrDimensionType.ENERGY:
                energy += dimension.volume
            elif dimension.type is CdrDimensionType.PARKING_TIME:
                parking += dimension.volume
    yield from _total_violations(cdr, energy, parking, limits)


def _total_violations(
    cdr: Cdr, energy: Decimal, parking: Decimal, limits: PlausibilityLimits
) -> Iterator[Violation]:
    if abs(cdr.total_energy) > limits.energy_kwh_max:
        yield Violation(
            path="total_energy",
            rule=f"must not exceed {limits.energy_kwh_max} kWh",
            code="energy_ceiling",
        )
    if abs(energy - cdr.total_energy) > limits.energy_tolerance_kwh:
        yield Violation(
            path="total_energy",
            rule=f"must equal the periods' ENERGY volumes ({energy} kWh)",
            code="totals_inconsistent",
        )
    session_h = _hours(cdr.end_date_time - cdr.start_date_time)
    if cdr.total_time > session_h + limits.time_tolerance_h:
        yield Violation(
            path="total_time",
            rule=f"must not exceed the session's duration ({session_h:.4f} h)",
            code="totals_inconsistent",
        )
    if (
        cdr.total_parking_time is not None
        and abs(parking - cdr.total_parking_time) > limits.time_tolerance_h
    ):
        yield Violation(
            path="total_parking_time",
            rule=f"must equal the periods' PARKING_TIME volumes ({parking} h)",
            code="totals_inconsistent",
        )
