"""Element lookup, FLAT, reservations and what counts as unpriceable."""

from __future__ import annotations

from decimal import Decimal

import pytest

from settlement.rating import Dimension, NoMatchingElement, rate_cdr
from tests.unit.rating.factories import cdr, component, element, period, tariff

D = Decimal


def test_first_matching_element_per_dimension() -> None:
    """mod_tariffs 11.3.1 Tariff object: per dimension, the first element in the list with a
    component for it and matching restrictions is used; others dimensions may come from
    other elements."""
    t = tariff(
        element(component("TIME", "1.00"), max_power="10"),
        element(component("ENERGY", "0.30"), component("TIME", "2.00")),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T10:00:00Z", energy="10", time="1", max_power="7"),
            end="2024-01-15T11:00:00Z",
        ),
        t,
    )
    (charge_period,) = rated.periods
    by_dimension = {c.dimension: c for c in charge_period.charges}
    assert by_dimension[Dimension.TIME].element_index == 0
    assert by_dimension[Dimension.ENERGY].element_index == 1
    assert rated.totals.total_cost.excl_vat == D("4.0000")


def test_fallback_element_when_restriction_fails() -> None:
    """mod_tariffs 11.3.1 Tariff object: an element without restrictions after the restricted
    ones acts as the fallback for its dimension."""
    t = tariff(
        element(component("TIME", "1.00"), max_power="10"),
        element(component("TIME", "2.00")),
    )
    rated = rate_cdr(
        cdr(period("2024-01-15T10:00:00Z", time="1", max_power="22"), end="2024-01-15T11:00:00Z"), t
    )
    assert rated.periods[0].charges[0].element_index == 1
    assert rated.totals.total_time_cost is not None
    assert rated.totals.total_time_cost.excl_vat == D("2.0000")


def test_unmatched_dimension_is_free_and_listed() -> None:
    """mod_tariffs 11.3.1 Tariff object: "When no Tariff Element with a specific Dimension is
    found for which the Restrictions match ... there will be no costs for that Dimension"."""
    t = tariff(
        element(component("ENERGY", "0.25")),
        element(component("PARKING_TIME", "5.00"), start_time="09:00", end_time="18:00"),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T17:00:00Z", energy="10"),
            period("2024-01-15T18:00:00Z", parking="1"),  # 19:00 Berlin: no parking element
            end="2024-01-15T19:00:00Z",
        ),
        t,
        time_zone="Europe/Berlin",
    )
    assert rated.periods[1].unpriced == (Dimension.PARKING_TIME,)
    assert rated.totals.total_cost.excl_vat == D("2.5000")
    assert rated.totals.total_parking_cost is not None
    assert rated.totals.total_parking_cost.excl_vat == D("0.0000")


def test_whole_session_unmatched_is_an_error_not_a_silent_zero() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions (start_date/end_date): a tariff none of whose
    elements applies in any period cannot be the tariff the session was charged with."""
    t = tariff(element(component("ENERGY", "0.25"), start_date="2025-08-20", end_date="2025-08-21"))
    with pytest.raises(NoMatchingElement) as raised:
        rate_cdr(cdr(period("2024-01-15T10:00:00Z", energy="10")), t, time_zone="Europe/Berlin")
    assert raised.value.reason_code == "no_matching_element"


def test_flat_charged_once_per_element_not_per_period() -> None:
    """mod_tariffs 11.4.5 TariffDimensionType FLAT: a fixed fee for the session, charged once
    for the element that becomes active, however many periods follow."""
    t = tariff(element(component("FLAT", "1.00", step=0)))
    rated = rate_cdr(
        cdr(
            period("2015-06-29T15:00:00Z", time="0.5"),
            period("2015-06-29T15:30:00Z", time="0.5"),
            period("2015-06-29T16:00:00Z", time="0.5"),
            end="2015-06-29T16:30:00Z",
        ),
        t,
    )
    assert rated.totals.total_fixed_cost is not None
    assert rated.totals.total_fixed_cost.excl_vat == D("1.0000")


def test_flat_of_each_element_that_becomes_active() -> None:
    """mod_tariffs 11.3.1 Tariff object + FLAT: a second element with its own FLAT that becomes
    active later in the session charges its own fee."""
    t = tariff(
        element(component("FLAT", "1.00"), component("ENERGY", "0.20"), end_time="20:00"),
        element(component("FLAT", "0.50"), component("ENERGY", "0.30")),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T18:00:00Z", energy="1"),  # 19:00 Berlin
            period("2024-01-15T19:00:00Z", energy="1"),  # 20:00 Berlin
            end="2024-01-15T20:00:00Z",
        ),
        t,
        time_zone="Europe/Berlin",
    )
    assert rated.totals.total_fixed_cost is not None
    assert rated.totals.total_fixed_cost.excl_vat == D("1.5000")
    assert rated.totals.total_cost.excl_vat == D("2.0000")


RESERVATION_TARIFF = (
    element(component("FLAT", "4.00", vat="20"), reservation="RESERVATION_EXPIRES"),
    element(component("TIME", "2.00", step=600, vat="20"), reservation="RESERVATION"),
    element(component("FLAT", "0.50", vat="20"), component("ENERGY", "0.25", vat="10")),
)


def test_used_reservation_time_and_start_fee() -> None:
    """mod_tariffs 11.4.7 ReservationRestrictionType RESERVATION + mod_tariffs "Tariff example
    with reservation price and expire fee": 22 min reserved billed as 30 min, expiry fee not
    charged, start fee and energy charged: 6.50 / 7.30."""
    rated = rate_cdr(
        cdr(
            period("2024-01-16T09:00:00Z", reservation="0.366667"),
            period("2024-01-16T09:22:00Z", energy="20", time="1"),
            end="2024-01-16T10:22:00Z",
        ),
        tariff(*RESERVATION_TARIFF),
    )
    totals = rated.totals
    assert totals.total_reservation_cost is not None
    assert (totals.total_reservation_cost.excl_vat, totals.total_reservation_cost.incl_vat) == (
        D("1.0000"),
        D("1.2000"),
    )
    assert (totals.total_cost.excl_vat, totals.total_cost.incl_vat) == (D("6.5000"), D("7.3000"))
    assert totals.total_time_cost is None  # only reservation elements have TIME


def test_expired_reservation_fee_and_time() -> None:
    """mod_tariffs 11.4.7 ReservationRestrictionType RESERVATION_EXPIRES: a reservation that
    expired without charging pays the expiry fee and the reserved time: 6.00 / 7.20; the
    start fee of the charging element is not due."""
    rated = rate_cdr(
        cdr(period("2024-01-16T09:00:00Z", reservation="1"), end="2024-01-16T10:00:00Z"),
        tariff(*RESERVATION_TARIFF),
    )
    assert (rated.totals.total_cost.excl_vat, rated.totals.total_cost.incl_vat) == (
        D("6.0000"),
        D("7.2000"),
    )
    assert rated.totals.total_fixed_cost is not None
    assert rated.totals.total_fixed_cost.excl_vat == D("0.0000")


def test_expired_reservation_prefers_expires_time_whatever_the_order() -> None:
    """mod_tariffs 11.4.7 ReservationRestrictionType note: with TIME in both RESERVATION and
    RESERVATION_EXPIRES elements, an expired reservation's time is priced by the
    RESERVATION_EXPIRES element; a used one by the RESERVATION element."""
    t = tariff(
        element(component("TIME", "3.00", step=600), reservation="RESERVATION"),
        element(component("TIME", "6.00", step=600), reservation="RESERVATION_EXPIRES"),
        element(component("ENERGY", "0.25")),
    )
    expired = rate_cdr(
        cdr(period("2024-01-16T09:00:00Z", reservation="1.5"), end="2024-01-16T10:30:00Z"), t
    )
    assert expired.totals.total_cost.excl_vat == D("9.0000")
    used = rate_cdr(
        cdr(
            period("2024-01-16T09:00:00Z", reservation="0.5"),
            period("2024-01-16T09:30:00Z", energy="10"),
            end="2024-01-16T10:30:00Z",
        ),
        t,
    )
    assert used.totals.total_cost.excl_vat == D("4.0000")  # 0.5 h x 3.00 + 10 kWh x 0.25


def test_reservation_time_component_does_not_price_charging_time() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions.reservation: "When this field is present, the
    TariffElement describes reservation costs" - its TIME does not price charging time."""
    t = tariff(
        element(component("TIME", "5.00", step=60), reservation="RESERVATION"),
        element(component("ENERGY", "0.25")),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-16T09:00:00Z", reservation="0.25"),
            period("2024-01-16T09:15:00Z", energy="20", time="1"),
            end="2024-01-16T10:15:00Z",
        ),
        t,
    )
    assert rated.totals.total_cost.excl_vat == D("6.2500")
    assert Dimension.TIME in rated.periods[1].unpriced
