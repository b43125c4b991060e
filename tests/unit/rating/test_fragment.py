"""`roamclear rate --lenient`: a real CDR (the OCPI specification's, from ../shared/ocpi-cases)
mailed without its identity and location details prices as the whole CDR does, and says
which fields it filled; what pricing needs is never filled."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from schemas.base import loads_exact
from schemas.ocpi.v211 import parse_cdr_any, parse_tariff_any
from schemas.validation import SchemaInvalid
from settlement.rating import rate_cdr
from settlement.rating.fragment import NEVER_FILLED, PLACEHOLDER, complete_for_pricing

CASE = "ocpi-spec-025kwh_start-20kwh"
REMOVED = ("country_code", "party_id", "id", "cdr_token", "auth_method", "last_updated")
LOCATION_KEPT = ("id", "country")  # the rest of cdr_location is removed


def _case(corpus_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    cdr = loads_exact((corpus_dir / CASE / "cdr.json").read_bytes())
    tariff = loads_exact((corpus_dir / CASE / "tariff.json").read_bytes())
    return cdr, tariff


def _fragment(cdr: dict[str, Any]) -> dict[str, Any]:
    fragment = {k: v for k, v in cdr.items() if k not in REMOVED}
    location = cdr["cdr_location"]
    fragment["cdr_location"] = {k: location[k] for k in LOCATION_KEPT}
    return fragment


def test_a_fragment_prices_as_the_whole_cdr_and_lists_what_was_filled(corpus_dir: Path) -> None:
    cdr, tariff = _case(corpus_dir)
    with pytest.raises(SchemaInvalid):
        parse_cdr_any(_fragment(cdr))  # as the partner sent it, the schema refuses it
    completed = complete_for_pricing(_fragment(cdr))
    location_filled = [
        f"cdr_location.{f}"
        for f in ("address", "city", "coordinates", "evse_uid", "evse_id", "connector_id")
    ] + [f"cdr_location.connector_{f}" for f in ("standard", "format", "power_type")]
    assert completed.filled == (
        "country_code", "party_id", "id", "auth_method", "cdr_token", *location_filled,
        "last_updated",
    )  # fmt: skip
    # kept as sent: the location's id and country, and everything pricing reads
    assert completed.cdr["cdr_location"]["id"] == cdr["cdr_location"]["id"]
    assert completed.cdr["cdr_location"]["country"] == cdr["cdr_location"]["country"]
    assert completed.cdr["cdr_token"]["uid"] == PLACEHOLDER
    assert {f: completed.cdr[f] for f in NEVER_FILLED} == {f: cdr[f] for f in NEVER_FILLED}

    parsed_tariff = parse_tariff_any(tariff)
    whole = rate_cdr(parse_cdr_any(cdr), parsed_tariff)
    fragment = rate_cdr(parse_cdr_any(completed.cdr), parsed_tariff)
    expected = loads_exact((corpus_dir / CASE / "expected.json").read_bytes())["total_cost"]
    assert fragment.totals.total_cost == whole.totals.total_cost
    assert fragment.totals.total_cost.excl_vat == Decimal(expected["excl_vat"])
    assert fragment.periods == whole.periods


def test_what_pricing_needs_is_never_filled() -> None:
    completed = complete_for_pricing({"cdr_token": "not an object"})
    assert not set(NEVER_FILLED) & set(completed.filled)
    assert completed.cdr["cdr_token"] == "not an object"  # left for the schema to refuse
    with pytest.raises(SchemaInvalid) as refused:
        parse_cdr_any(completed.cdr)
    said = " ".join(str(v) for v in refused.value.violations)
    assert all(field in said for field in NEVER_FILLED) and "cdr_token" in said


def test_rate_lenient_on_the_command_line(corpus_dir: Path, tmp_path: Path) -> None:
    cdr, tariff = _case(corpus_dir)
    fragment_file, tariff_file = tmp_path / "fragment.json", tmp_path / "tariff.json"
    fragment_file.write_text(json.dumps(_fragment(cdr), default=str))
    tariff_file.write_text(json.dumps(tariff, default=str))
    runner = CliRunner()
    args = ["rate", "--cdr", str(fragment_file), "--tariff", str(tariff_file)]
    strict = runner.invoke(cli, args)
    assert strict.exit_code == 2 and "cdr_token" in strict.output
    lenient = runner.invoke(cli, [*args, "--lenient", "--json"])
    assert lenient.exit_code == 0, lenient.output
    document = json.loads(lenient.stdout)
    assert document["filled"][:3] == ["country_code", "party_id", "id"]
    assert document["total_cost"]["excl_vat"] == "5.5000"
    shown = runner.invoke(cli, [*args, "--lenient"])
    assert shown.exit_code == 0 and "filled for pricing" in shown.output
    assert "cdr_location.evse_id" in shown.output and "total_cost 5.5000" in shown.output
