"""step_size, as the CDRs module describes it (mod_cdrs 10.4.1 "step_size")."""

from __future__ import annotations

from decimal import Decimal

from settlement.money import round_for_comparison
from settlement.rating import Dimension, rate_cdr
from tests.unit.rating.factories import cdr, component, element, period, tariff

D = Decimal
ZONE = "Europe/Berlin"

STEP_TARIFF = tariff(  # the spec's tariff_14_step_size
    element(
        component("TIME", "1.20", step=1800),
        component("PARKING_TIME", "1.00", step=900),
        start_time="00:00",
        end_time="17:00",
    ),
    element(
        component("TIME", "2.40", step=900),
        component("PARKING_TIME", "1.00", step=900),
        start_time="17:00",
        end_time="20:00",
    ),
    element(component("TIME", "2.40", step=900), start_time="20:00", end_time="00:00"),
)


def test_energy_step_on_session_total_not_last_period() -> None:
    """mod_cdrs 10.4.1 step_size: "4.3 kWh before 17:00 and 1.1 kWh after ... 5.4 kWh ... rounds
    this up to 5.5 kWh total. It does NOT round the energy used after 17:00 to 1.5 kWh"."""
    t = tariff(
        element(component("ENERGY", "0.20", step=500), end_time="17:00"),
        element(component("ENERGY", "0.27", step=500)),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T14:00:00Z", energy="4.3"),
            period("2024-01-15T16:00:00Z", energy="1.1"),
            end="2024-01-15T17:00:00Z",
        ),
        t,
        time_zone=ZONE,
    )
    last = rated.periods[1].charges[0]
    assert last.billed_volume == D("1.2")
    assert rated.totals.total_cost.excl_vat == D("1.1840")  # 4.3 x 0.20 + 1.2 x 0.27


def test_energy_step_of_last_component_used() -> None:
    """mod_cdrs 10.4.1 step_size: "the step_size of the last relevant PriceComponent is used"
    (tandemdrive issue #79 confirms 12 kWh -> 15 kWh with a last step of 5000 Wh)."""
    t = tariff(
        element(component("ENERGY", "2.00", step=1), end_time="17:00"),
        element(component("ENERGY", "2.00", step=5000)),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T14:00:00Z", energy="6"),
            period("2024-01-15T16:00:00Z", energy="6"),
            end="2024-01-15T17:00:00Z",
        ),
        t,
        time_zone=ZONE,
    )
    assert rated.totals.total_cost.excl_vat == D("30.0000")


def test_time_step_spans_elements_switch_2() -> None:
    """mod_tariffs 11.4.2 "Example: switching to different Tariff Element #2": 35 min charging
    rounded to 45 min with the last TIME step (900 s); 25 min at 1.20 + 20 min at 2.40 = 1.30."""
    rated = rate_cdr(
        cdr(
            period("2022-01-13T15:35:00Z", time="0.416667"),
            period("2022-01-13T16:00:00Z", time="0.166667"),
            end="2022-01-13T16:10:00Z",
        ),
        STEP_TARIFF,
        time_zone=ZONE,
    )
    assert round_for_comparison(rated.totals.total_cost.excl_vat, 2) == D("1.30")
    assert rated.periods[1].charges[0].billed_volume == D("0.75") - D("0.416667")


def test_charging_time_not_stepped_when_parking_follows() -> None:
    """mod_cdrs 10.4.1 step_size: "After 21 minutes of charging, the EV is full but remains
    connected for 7 more minutes. The cost of charging will be calculated based on 21 minutes
    (not 25). The cost of parking ... based on 10 minutes"."""
    t = tariff(
        element(component("TIME", "1.00", step=300), component("PARKING_TIME", "2.00", step=300))
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-15T10:00:00Z", time="0.35"),
            period("2024-01-15T10:21:00Z", parking="0.116667"),
            end="2024-01-15T10:28:00Z",
        ),
        t,
    )
    time_charge, parking_charge = (p.charges[0] for p in rated.periods)
    assert time_charge.billed_volume == D("0.35")
    assert parking_charge.billed_volume * 3600 == D("600.0000")


def test_parking_step_only_on_billable_parking_switch_free() -> None:
    """mod_tariffs 11.4.2 "Example: switching to Free-of-Charge Tariff Element": 8 billable
    parking minutes before 20:00 are rounded to 15 min (0.25); the free parking after 20:00
    is not counted; charging 12 min not stepped (0.48). Total 0.73."""
    rated = rate_cdr(
        cdr(
            period("2022-01-13T18:40:00Z", time="0.2"),
            period("2022-01-13T18:52:00Z", parking="0.133333"),
            period("2022-01-13T19:00:00Z", parking="0.2"),
            end="2022-01-13T19:12:00Z",
        ),
        STEP_TARIFF,
        time_zone=ZONE,
    )
    assert round_for_comparison(rated.totals.total_cost.excl_vat, 2) == D("0.73")
    assert rated.periods[2].unpriced == (Dimension.PARKING_TIME,)


def test_reservation_time_stepped_on_its_own() -> None:
    """mod_tariffs "Tariff example with reservation price and fee": 13 min of reservation are
    billed as 15 min (step 300 s) although charging follows; 2.00 + 1.25 + 0.50 + 5.00."""
    t = tariff(
        element(
            component("FLAT", "2.00"),
            component("TIME", "5.00", step=300),
            reservation="RESERVATION",
        ),
        element(component("FLAT", "0.50"), component("ENERGY", "0.25")),
    )
    rated = rate_cdr(
        cdr(
            period("2024-01-16T09:00:00Z", reservation="0.216667"),
            period("2024-01-16T09:13:00Z", energy="20"),
            end="2024-01-16T10:13:00Z",
        ),
        t,
    )
    assert round_for_comparison(rated.totals.total_cost.excl_vat, 2) == D("8.75")


def test_step_size_zero_means_no_rounding() -> None:
    """mod_tariffs 11.4.2 PriceComponent step_size: "rounded up to the smallest multiple of
    step_size"; a step_size of 0 has no multiple above zero, so nothing is rounded."""
    t = tariff(element(component("ENERGY", "1.00", step=0)))
    rated = rate_cdr(cdr(period("2024-01-15T10:00:00Z", energy="1.2345")), t)
    assert rated.totals.total_cost.excl_vat == D("1.2345")


def test_wh_step_examples_from_the_spec() -> None:
    """mod_tariffs 11.4.2 PriceComponent note: 115.2 Wh at 0.25/kWh is billed as 116 Wh with
    step 1 (0.029), 125 Wh with step 25 (0.031), 500 Wh with step 500 (0.125)."""
    for step, expected in ((1, "0.029"), (25, "0.03125"), (500, "0.125")):
        t = tariff(element(component("ENERGY", "0.25", step=step)))
        rated = rate_cdr(cdr(period("2024-01-15T10:00:00Z", energy="0.1152")), t)
        assert rated.exact_totals.total_cost.excl_vat == D(expected)
