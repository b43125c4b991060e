"""Violations: precise paths and short rules, every one of them at once."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from schemas.ocpi.cdr import Cdr
from schemas.validation import (
    SchemaInvalid,
    Violation,
    parse_agreement,
    parse_cdr,
    parse_location,
    parse_tariff,
    render_path,
)
from schemas.wire import to_ocpi_json
from tests.unit.schemas.factories import CDR, LOCATION, TARIFF, build


def violations(raw: Any, parse: Any = parse_cdr) -> dict[str, Violation]:
    with pytest.raises(SchemaInvalid) as caught:
        parse(raw)
    return {violation.path: violation for violation in caught.value.violations}


def cdr_with_volume(index: int, volume: Decimal) -> dict[str, Any]:
    data = build(CDR)
    data["charging_periods"][index]["dimensions"][0]["volume"] = volume
    return data


def test_negative_time_volume_is_located_exactly() -> None:
    found = violations(cdr_with_volume(2, Decimal("-0.1")))
    assert found["charging_periods[2].dimensions[0].volume"].rule == "must be >= 0"


def test_negative_energy_volume_is_allowed() -> None:
    assert parse_cdr(cdr_with_volume(0, Decimal("-1.5"))).total_energy == Decimal("5.5")


def test_rules_for_common_mistakes() -> None:
    data = build(CDR, id="X" * 40, auth_method="PASSWORD", start_date_time="2025-03-01T10:00:00")
    del data["currency"]
    data["cdr_token"]["uid"] = "U" * 37
    data["total_cost"] = {"excl_vat": Decimal("3.27501")}
    found = violations(data)
    assert found["id"].rule == "at most 39 characters"
    assert found["cdr_token.uid"].rule == "at most 36 characters"
    assert found["auth_method"].rule == "must be one of: AUTH_REQUEST, COMMAND, WHITELIST"
    assert found["currency"].rule == "field required"
    assert found["currency"].code == "missing"
    assert "offset" in found["start_date_time"].rule
    assert found["total_cost.excl_vat"].rule == "at most 4 decimals"
    assert len(found) == 6


def test_non_credit_cdr_id_is_at_most_36() -> None:
    found = violations(build(CDR, id="X" * 37))
    assert found["id"].rule == "at most 36 characters for a non-credit CDR"


def test_credit_cdr_needs_its_reference() -> None:
    found = violations(build(CDR, credit=True))
    assert found["credit_reference_id"].rule.startswith("field required")


def test_end_before_start_is_refused() -> None:
    found = violations(build(CDR, end_date_time="2025-03-01T09:00:00Z"))
    assert found["end_date_time"].code == "date_order"


def test_empty_plus_lists_are_refused() -> None:
    data = build(CDR, charging_periods=[])
    assert violations(data)["charging_periods"].rule == "must have at least one element"
    tariff = build(TARIFF)
    tariff["elements"][0]["price_components"] = []
    found = violations(tariff, parse_tariff)
    assert found["elements[0].price_components"].rule == "must have at least one element"
    assert list(found) == ["elements[0].price_components"]


def test_bad_tariff_enum_lists_the_allowed_values() -> None:
    tariff = build(TARIFF)
    tariff["elements"][1]["price_components"][0]["type"] = "SESSION_TIME"
    found = violations(tariff, parse_tariff)
    assert found["elements[1].price_components[0].type"].rule == (
        "must be one of: ENERGY, FLAT, PARKING_TIME, TIME"
    )


def test_restriction_formats() -> None:
    tariff = build(TARIFF)
    tariff["elements"][0]["restrictions"]["start_time"] = "8:00"
    tariff["elements"][0]["restrictions"]["start_date"] = "2025-13-01"
    found = violations(tariff, parse_tariff)
    assert found["elements[0].restrictions.start_time"].rule.startswith("must be a time of day")
    assert found["elements[0].restrictions.start_date"].rule == "must be a date YYYY-MM-DD"


def test_malformed_json_is_one_violation_at_the_root() -> None:
    found = violations(b'{"id": "1",, }')
    assert list(found) == ["$"]
    assert found["$"].code == "json_invalid"
    assert "line 1 column" in found["$"].rule


def test_as_text_and_as_json() -> None:
    with pytest.raises(SchemaInvalid) as caught:
        parse_cdr(build(CDR, auth_method="X", currency="euro"))
    error = caught.value
    assert error.as_text().splitlines() == [
        "auth_method: must be one of: AUTH_REQUEST, COMMAND, WHITELIST",
        "currency: must be 3 upper-case letters (ISO 4217)",
    ]
    assert error.as_json()[1] == {
        "path": "currency",
        "rule": "must be 3 upper-case letters (ISO 4217)",
        "code": "string_pattern_mismatch",
    }


def test_parse_accepts_bytes_text_and_mappings() -> None:
    raw = to_ocpi_json(Cdr.model_validate(CDR))
    assert (
        parse_cdr(raw) == parse_cdr(raw.decode()) == parse_cdr(json.loads(raw, parse_float=Decimal))
    )


def test_location_time_zone_must_be_iana() -> None:
    found = violations(build(LOCATION, time_zone="Mars/Olympus"), parse_location)
    assert found["time_zone"].code == "time_zone"


def test_agreement_violations() -> None:
    found = violations({"agreement_id": "a", "version": 0, "cpo": "NL*TNM"}, parse_agreement)
    assert found["version"].rule == "must be >= 1"
    assert found["cpo"].rule == "must be an object"
    assert found["currency"].rule == "field required"


def test_render_path() -> None:
    assert render_path(()) == "$"
    assert render_path(("charging_periods", 2, "dimensions", 0, "volume")) == (
        "charging_periods[2].dimensions[0].volume"
    )
