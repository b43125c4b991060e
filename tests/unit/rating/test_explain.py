"""``roamclear rate --explain``: the table of periods, components and totals it prints."""

from __future__ import annotations

from rich.console import Console

from pipeline.cli.rate import explain_table
from settlement.rating import RatedCdr, rate_cdr
from tests.unit.rating.factories import cdr, component, element, period, tariff

CONSOLE_WIDTH = 160


def _rated() -> RatedCdr:
    """20 kWh with a start fee, one free hour of charging time, then 12 min of parking billed
    per started 15 min; the reservation time reported in the parking period is not priced."""
    t = tariff(
        element(component("FLAT", "0.50", vat="20"), component("ENERGY", "0.25", vat="10")),
        element(component("PARKING_TIME", "2.00", step=900, vat="10")),
    )
    return rate_cdr(
        cdr(
            period("2024-01-15T10:00:00Z", energy="20", time="1"),
            period("2024-01-15T11:00:00Z", parking="0.2", reservation="0"),
            end="2024-01-15T11:12:00Z",
        ),
        t,
    )


def _rendered(rated: RatedCdr) -> tuple[str, list[tuple[str, ...]]]:
    """The exported text and the table's body rows as tuples of stripped cells."""
    console = Console(record=True, width=CONSOLE_WIDTH)
    console.print(explain_table(rated))
    text = console.export_text()
    rows = [
        tuple(cell.strip() for cell in line.strip().strip("│").split("│"))
        for line in text.splitlines()
        if line.startswith("│")
    ]
    return text, rows


def test_explain_lists_each_charge_the_free_dimensions_and_the_totals() -> None:
    text, rows = _rendered(_rated())
    assert text.splitlines()[0].strip() == "CDR CDR1 · tariff T1 · zone None"
    assert rows == [
        ("0", "2024-01-15 10:00:00", "ENERGY", "#0", "0.25", "10", "20", "20", "5.00", "5.500"),
        ("0", "2024-01-15 10:00:00", "FLAT", "#0", "0.50", "20", "1", "1", "0.50", "0.600"),
        ("0", "2024-01-15 10:00:00", "TIME", "none (free)", "", "", "", "", "", ""),
        # 0.2 h = 720 s, billed as 900 s (step_size): 0.25 h x 2.00
        (
            "1",
            "2024-01-15 11:00:00",
            "PARKING_TIME",
            "#1",
            "2.00",
            "10",
            "0.2",
            "0.25",
            "0.5000",
            "0.55000",
        ),
        ("1", "2024-01-15 11:00:00", "RESERVATION_TIME", "none (free)", "", "", "", "", "", ""),
        ("total_cost", "", "", "", "", "", "", "", "6.0000", "6.6500"),
        ("total_energy_cost", "", "", "", "", "", "", "", "5.0000", "5.5000"),
        ("total_time_cost", "", "", "", "", "", "", "", "n/a", "n/a"),
        ("total_parking_cost", "", "", "", "", "", "", "", "0.5000", "0.5500"),
        ("total_fixed_cost", "", "", "", "", "", "", "", "0.5000", "0.6000"),
        ("total_reservation_cost", "", "", "", "", "", "", "", "n/a", "n/a"),
    ]


def test_explain_rows_show_the_rated_values_exactly() -> None:
    """Every charge row carries the exact (unrounded) figures of the RatedCdr, in order."""
    rated = _rated()
    _, rows = _rendered(rated)
    charged = [row for row in rows if row[3].startswith("#")]
    expected = [
        (str(p.index), c.dimension.value, str(c.volume), str(c.billed_volume), str(c.cost.excl_vat))
        for p in rated.periods
        for c in p.charges
    ]
    assert [(r[0], r[2], r[6], r[7], r[8]) for r in charged] == expected
