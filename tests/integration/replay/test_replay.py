"""Shadow replay through the real path: records cleared by the worker's batch (real broker,
real PostgreSQL), then replayed from the archive with the CLI.

- `--reference as-booked` over an untouched range (bookings, a duplicate, rejections of
  every kind, a credit) reports every record `same`;
- a retroactive tariff correction (a version published later, in force from the middle of
  the range) replayed with `--reference current`: exactly the CDRs that started after it
  are `amount_changed`, cause `tariff_version_changed`, with the right deltas; `as-of` a
  moment before the correction was published sees none of it.
"""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline import reference
from pipeline.cli.main import app as cli
from pipeline.config import Settings
from schemas.validation import parse_agreement, parse_tariff
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    mixed_batch,
    register_reference_data,
    sample,
    submit,
)
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration

# sample CDR 0: 18.5 kWh charged 08:00-09:30 UTC, off-peak in Amsterdam (0.30 EUR/kWh)
ENERGY_KWH = Decimal("18.5")
PRICE_BEFORE, PRICE_AFTER = Decimal("0.30"), Decimal("0.35")
CORRECTION_FROM = datetime(2026, 3, 10, tzinfo=UTC)
DAYS = (1, 4, 7, 10, 13, 16)  # sessions on 3, 6, 9 March (before) and 12, 15, 18 (after)


def _day(days: int) -> dict[str, Any]:
    """Sample CDR 0 moved `days` days later, with its own id."""
    cdr = cdr_dict(0, id=f"CDR-DAY-{days:02}")
    shift = timedelta(days=days)

    def moved(text: str) -> str:
        return (datetime.fromisoformat(text) + shift).isoformat().replace("+00:00", "Z")

    for field in ("start_date_time", "end_date_time", "last_updated"):
        cdr[field] = moved(cdr[field])
    for period in cdr["charging_periods"]:
        period["start_date_time"] = moved(period["start_date_time"])
    return cdr


def _publish_lenient_agreement(settings: Settings) -> None:
    """Version 2 of the default agreement with a tolerance a correction stays inside: the
    CPO's declared totals were priced with the old tariff (a stricter tolerance reports the
    corrected CDRs `now_rejected` price_discrepancy, as clearing would)."""
    body = sample("agreement_nl_tnm_default.json") | {"version": 2, "tolerance": 5}
    reference.publish_agreements(settings, [parse_agreement(body)])


def _publish_correction(settings: Settings) -> None:
    """The tariff's energy price corrected from 10 March on, published now."""
    body = sample("tariff_nl_tnm_ac.json")
    body["elements"][2]["price_components"][0]["price"] = PRICE_AFTER
    body["last_updated"] = CORRECTION_FROM.isoformat().replace("+00:00", "Z")
    reference.publish_tariffs(settings, [parse_tariff(body)])


def _replay(settings: Settings, *args: str) -> dict[str, Any]:
    env = {
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "ROAMCLEAR_HOME": str(settings.home),
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
    }
    now = datetime.now(UTC)
    window = ["--from", (now - timedelta(hours=1)).isoformat()]
    window += ["--to", (now + timedelta(hours=1)).isoformat()]
    result = CliRunner().invoke(cli, ["replay", *window, "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    replayed: dict[str, Any] = json.loads(result.stdout)
    return replayed


def test_replay_as_booked_is_same_and_a_correction_changes_exactly_the_later_cdrs(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    _publish_lenient_agreement(settings)
    raw, _ = mixed_batch()
    days = [_day(d) for d in DAYS]
    raw += [(f"NL*TNM*{c['id']}".encode(), envelope(c)) for c in days]
    asyncio.run(_clear(settings, submit(settings, raw)))

    untouched = _replay(settings, "--reference", "as-booked")
    assert untouched["records"] == len(raw)
    assert untouched["changes"]["same"] == len(raw), untouched["changed"]
    assert untouched["changed"] == []
    current = _replay(settings, "--reference", "current")
    assert current["changes"]["same"] == len(raw)

    published_before = datetime.now(UTC)
    _publish_correction(settings)
    report = tmp_path / "replay.csv"
    corrected = _replay(settings, "--reference", "current", "--report", str(report))
    after = {f"NL*TNM*{c['id']}" for c in days if c["start_date_time"] >= "2026-03-10"}
    assert len(after) == 3
    changed = {v["cdr_key"]: v for v in corrected["changed"]}
    assert set(changed) == after
    energy_delta = ENERGY_KWH * (PRICE_AFTER - PRICE_BEFORE)  # 0.925 excl. VAT
    for verdict in changed.values():
        assert verdict["change"] == "amount_changed"
        assert verdict["causes"] == ["tariff_version_changed"]
        deltas = {d["component"]: Decimal(d["delta"]) for d in verdict["deltas"]}
        assert deltas["excl_vat"] == energy_delta
        # VAT 21 %, the total incl. VAT rounded to the ledger's 4 decimals (1.11925 up)
        assert deltas["incl_vat"] == Decimal("1.1193")
        assert Decimal(verdict["deltas"][0]["booked"]) == Decimal("7.25")
    totals = {(t["partner"], t["role"], t["currency"]): t for t in corrected["totals"]}
    cpo = totals[("NL*TNM", "CPO", "EUR")]
    assert Decimal(cpo["effect"]["excl_vat"]) == 3 * energy_delta
    assert cpo["changes"]["amount_changed"] == 3
    with report.open(encoding="utf-8") as rows:
        by_change = [row["change"] for row in csv.DictReader(rows)]
    assert len(by_change) == len(raw) and by_change.count("amount_changed") == 3

    before = _replay(settings, "--reference", f"as-of {published_before.isoformat()}")
    assert before["changes"]["same"] == len(raw)
    # NL*ABC submitted one record (rejected: no agreement), still rejected for that reason
    only_abc = _replay(settings, "--reference", "current", "--partner", "NL*ABC")
    assert only_abc["records"] == 1 and only_abc["changes"]["same"] == 1
