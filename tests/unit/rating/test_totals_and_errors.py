"""Totals, VAT, price limits, credit CDRs, comparison, tariff choice and error reasons."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas.ocpi.cdr import Cdr
from settlement.rating import (
    AmbiguousTariff,
    CurrencyMismatch,
    MissingTimeZone,
    NegativeVolume,
    NoTariff,
    RatingError,
    TariffNotValid,
    compile_tariff,
    rate_cdr,
    zone_for_country,
)
from tests.unit.rating.factories import cdr, component, element, period, tariff

D = Decimal
START_FEE = tariff(
    element(component("FLAT", "0.50", vat="20"), component("ENERGY", "0.25", vat="10"))
)


def _energy_cdr(kwh: str, **fields: Any) -> Cdr:
    return cdr(period("2024-01-15T10:00:00Z", energy=kwh), end="2024-01-15T11:00:00Z", **fields)


def test_vat_per_component() -> None:
    """mod_tariffs 11.4.2 PriceComponent vat: per dimension; start fee 0.50 + 20 %, 20 kWh at
    0.25 + 10 % -> 5.50 / 6.10 (mod_tariffs "€ 0.25 per kWh + start fee")."""
    rated = rate_cdr(_energy_cdr("20"), START_FEE)
    t = rated.totals
    assert (t.total_cost.excl_vat, t.total_cost.incl_vat) == (D("5.5000"), D("6.1000"))
    assert t.total_fixed_cost is not None and t.total_fixed_cost.incl_vat == D("0.6000")
    assert t.total_time_cost is None and t.total_parking_cost is None
    assert t.total_reservation_cost is None


def test_no_vat_means_incl_equals_excl() -> None:
    """mod_tariffs 11.4.2 PriceComponent vat: "If omitted, no VAT is applicable"."""
    rated = rate_cdr(_energy_cdr("2"), tariff(element(component("ENERGY", "0.30"))))
    assert rated.totals.total_cost.incl_vat == rated.totals.total_cost.excl_vat == D("0.6000")


def test_min_price_floors_excl_and_incl_independently() -> None:
    """mod_tariffs 11.3.1 Tariff object min_price note: excl. and incl. VAT "both apply"."""
    t = tariff(
        element(component("ENERGY", "0.25", vat="10")),
        min_price={"excl_vat": "0.50", "incl_vat": "0.55"},
    )
    rated = rate_cdr(_energy_cdr("1.2"), t)
    assert (rated.totals.total_cost.excl_vat, rated.totals.total_cost.incl_vat) == (
        D("0.5000"),
        D("0.5500"),
    )
    assert rated.price_limit == "min_price"
    assert rated.totals.total_energy_cost is not None
    assert rated.totals.total_energy_cost.excl_vat == D("0.3000")  # subtotals as charged


def test_max_price_caps() -> None:
    """mod_tariffs 11.3.1 Tariff object max_price: 50 kWh + start fee would cost 13.00 / 14.35;
    the cap makes it 10.00 / 11.00."""
    t = tariff(
        *START_FEE.model_dump(mode="json")["elements"],
        max_price={"excl_vat": "10", "incl_vat": "11"},
    )
    rated = rate_cdr(_energy_cdr("50"), t)
    assert (rated.totals.total_cost.excl_vat, rated.totals.total_cost.incl_vat) == (
        D("10.0000"),
        D("11.0000"),
    )
    assert rated.price_limit == "max_price"


def test_totals_rounded_half_up_to_four_decimals() -> None:
    """DESIGN.md Money: CDR totals are rounded to 4 decimals (OCPI number), half-up."""
    t = tariff(element(component("ENERGY", "0.25", step=0)))
    rated = rate_cdr(_energy_cdr("0.00002"), t)
    assert rated.exact_totals.total_cost.excl_vat == D("0.0000050")
    assert rated.totals.total_cost.excl_vat == D("0.0000")
    rated = rate_cdr(_energy_cdr("0.0002"), t)
    assert rated.totals.total_cost.excl_vat == D("0.0001")  # 0.00005 half-up


def test_credit_cdr_negates_every_amount() -> None:
    """mod_cdrs 10.2.1 Credit CDRs: the credit contains the original's data, its total_cost the
    negative amounts; every amount is negated so the credit reverses the original."""
    credit = _energy_cdr(
        "20",
        id="CDR1-C",
        credit=True,
        credit_reference_id="CDR1",
        total_cost={"excl_vat": "-5.50", "incl_vat": "-6.10"},
        total_energy_cost={"excl_vat": "5.00"},
    )
    rated = rate_cdr(credit, START_FEE)
    assert rated.credit
    assert rated.totals.total_cost.excl_vat == D("-5.5000")
    assert rated.totals.total_energy_cost is not None
    assert rated.totals.total_energy_cost.excl_vat == D("-5.0000")
    assert rated.comparison.within_tolerance  # subtotal compared by magnitude


def test_comparison_reports_delta_and_tolerance() -> None:
    """mod_cdrs 10.3.1 CDR object total_cost: the CPO's declared total against ours."""
    declared = _energy_cdr("20", total_cost={"excl_vat": "5.52", "incl_vat": "6.10"})
    rated = rate_cdr(declared, START_FEE, tolerance=D("0.01"))
    delta = {f.field: f for f in rated.comparison.fields}["total_cost"]
    assert delta.delta_excl_vat == D("0.0200")
    assert not delta.within_tolerance and not rated.comparison.within_tolerance
    assert rate_cdr(declared, START_FEE, tolerance=D("0.02")).comparison.within_tolerance


def test_negative_volume_rejected() -> None:
    """mod_cdrs 10.4.2 CdrDimensionType ENERGY may be negative (fed into the grid); pricing a
    negative volume in a non-credit CDR is refused (negative_volume)."""
    with pytest.raises(NegativeVolume) as raised:
        rate_cdr(_energy_cdr("-1"), START_FEE)
    assert raised.value.reason_code == "negative_volume"


def test_currency_mismatch() -> None:
    """mod_cdrs 10.3.1 CDR currency vs mod_tariffs Tariff currency."""
    with pytest.raises(CurrencyMismatch):
        rate_cdr(_energy_cdr("1", currency="CHF"), START_FEE)


def test_tariff_validity_window() -> None:
    """mod_tariffs 11.3.1 Tariff start_date_time/end_date_time: the tariff valid when the
    session starts applies."""
    t = tariff(element(component("ENERGY", "0.25")), end_date_time="2019-06-30T23:59:59Z")
    with pytest.raises(TariffNotValid) as raised:
        rate_cdr(_energy_cdr("1"), t)
    assert raised.value.reason_code == "tariff_not_valid"
    later = tariff(element(component("ENERGY", "0.25")), start_date_time="2025-01-01T00:00:00Z")
    with pytest.raises(TariffNotValid):
        rate_cdr(_energy_cdr("1"), later)


def test_embedded_tariff_chosen_by_period_tariff_id() -> None:
    """mod_cdrs 10.4.6 ChargingPeriod tariff_id: "Unique identifier of the Tariff that is
    relevant for this Charging Period"."""
    cheap = START_FEE.model_dump(mode="json") | {"id": "CHEAP"}
    dear = START_FEE.model_dump(mode="json") | {
        "id": "DEAR",
        "elements": [element(component("ENERGY", "1"))],
    }
    embedded = cdr(
        period("2024-01-15T10:00:00Z", tariff_id="DEAR", energy="2"),
        end="2024-01-15T11:00:00Z",
        tariffs=[cheap, dear],
    )
    assert rate_cdr(embedded).tariff.id == "DEAR"
    assert rate_cdr(embedded).totals.total_cost.excl_vat == D("2.0000")
    with pytest.raises(NoTariff):
        rate_cdr(_energy_cdr("1"))
    switching = cdr(
        period("2024-01-15T10:00:00Z", tariff_id="CHEAP", energy="1"),
        period("2024-01-15T10:30:00Z", tariff_id="DEAR", energy="1"),
        end="2024-01-15T11:00:00Z",
        tariffs=[cheap, dear],
    )
    with pytest.raises(AmbiguousTariff):
        rate_cdr(switching)


def test_missing_time_zone_is_an_error_never_a_guess() -> None:
    """mod_tariffs 11.4.6 TariffRestrictions start_time: local time of the Location; DEU has two
    zones in zone.tab (Berlin, Busingen), so no zone is derived from the country."""
    t = tariff(
        element(component("ENERGY", "0.25"), start_time="08:00", end_time="20:00"),
        element(component("ENERGY", "0.30")),
    )
    with pytest.raises(MissingTimeZone) as raised:
        rate_cdr(_energy_cdr("1"), t)
    assert raised.value.reason_code == "missing_time_zone"
    assert isinstance(raised.value, RatingError)


def test_time_zone_sources_in_order() -> None:
    """Zone rule (settlement.rating.timezones): explicit, then registry, then the country's only
    zone in zone.tab; 11:30 UTC is 12:30 in Amsterdam and 06:30 in New York."""
    t = tariff(
        element(component("ENERGY", "2.00"), start_time="12:00", end_time="13:00"),
        element(component("ENERGY", "1.00")),
    )
    dutch = cdr(period("2024-01-15T11:30:00Z", energy="1"), country="NLD")
    assert zone_for_country("NLD") == "Europe/Amsterdam"
    assert rate_cdr(dutch, t).time_zone == "Europe/Amsterdam"
    assert rate_cdr(dutch, t).totals.total_cost.excl_vat == D("2.0000")
    assert rate_cdr(
        dutch, t, zone_lookup={"LOC1": "America/New_York"}
    ).totals.total_cost.excl_vat == D("1.0000")
    assert rate_cdr(dutch, t, zone_lookup=lambda _: None).time_zone == "Europe/Amsterdam"
    assert (
        rate_cdr(dutch, t, time_zone="UTC", zone_lookup={"LOC1": "Asia/Tokyo"}).time_zone == "UTC"
    )


def test_compiled_once_and_hashed() -> None:
    """DESIGN.md invariant 7: the rated CDR names the tariff version (id, last_updated, sha256
    of the canonical JSON); a tariff is compiled once per version."""
    first = compile_tariff(START_FEE)
    assert compile_tariff(START_FEE) is first
    same_content = tariff(*START_FEE.model_dump(mode="json")["elements"])
    assert compile_tariff(same_content) is first
    changed = tariff(element(component("ENERGY", "0.26")))
    assert compile_tariff(changed).ref.content_hash != first.ref.content_hash
    assert len(first.ref.content_hash) == 64


def test_float_tolerance_refused() -> None:
    """STYLE.md Money: floats are refused."""
    with pytest.raises(TypeError):
        rate_cdr(_energy_cdr("1"), START_FEE, tolerance=0.01)  # type: ignore[arg-type]
