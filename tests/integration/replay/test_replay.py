"""Shadow replay through the real path: records cleared by the worker's batch (real broker,
real PostgreSQL), then replayed from the archive with the CLI.

- `--reference as-booked` over an untouched range (bookings, a duplicate, rejections of
  every kind, a credit) reports every record `same`;
- a retroactive tariff correction (a version published later, in force from the middle of
  the range) replayed with `--reference current`: exactly the CDRs that started after it
  are `amount_changed`, cause `tariff_version_changed`, with the right deltas, and the CDR
  whose tariff arrived late `now_booked`; `as-of` a moment before the correction was
  published sees none of it;
- `--apply` books them into the open period (the closed March batches untouched), each
  correction linked to its original and its run; statements verify, the ledger sums to
  zero, every booking is explained; applying again books nothing (the replay finds every
  record the same; the same corrections sent again are refused by PostgreSQL's
  constraints); `replays list|show`.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from pipeline import reference
from pipeline.cli.main import app as cli
from pipeline.cli.replay import ReplayRun, apply_run
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_seal_keys
from pipeline.topics import Topic, topic_name
from schemas.validation import parse_agreement, parse_tariff
from settlement.batches.model import ClosePolicy
from settlement.replay.corrections import Correction, corrections
from settlement.replay.model import Reference, ReferenceMode
from settlement.store import books, replay_apply, statements
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.replay import ReplayRange
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
NOW_PRICED = "NL*TNM*CDR-NO-TARIFF"  # rejected no_tariff: its tariff comes late
APRIL_15 = datetime(2026, 4, 15, tzinfo=UTC)


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
    """The tariff's energy price corrected from 10 March on, published now; and the tariff
    the CDR rejected `no_tariff` named, published late."""
    body = sample("tariff_nl_tnm_ac.json")
    late = copy.deepcopy(body) | {"id": "NO-SUCH-TARIFF"}
    body["elements"][2]["price_components"][0]["price"] = PRICE_AFTER
    body["last_updated"] = CORRECTION_FROM.isoformat().replace("+00:00", "Z")
    reference.publish_tariffs(settings, [parse_tariff(body), parse_tariff(late)])


def _cli(settings: Settings, *args: str) -> Any:
    env = {
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "ROAMCLEAR_HOME": str(settings.home),
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _replay(settings: Settings, *args: str) -> dict[str, Any]:
    """`roamclear replay --json` over the last hour and the next (the records' broker time)."""
    now = datetime.now(UTC)
    window = ["--from", (now - timedelta(hours=1)).isoformat()]
    window += ["--to", (now + timedelta(hours=1)).isoformat()]
    replayed: dict[str, Any] = _cli(settings, "replay", *window, "--json", *args)
    return replayed


def _close(settings: Settings, as_of: datetime | None) -> None:
    assert settings.database_url
    close_once(settings.database_url, as_of, ClosePolicy(), load_seal_keys(settings).current)


def _verify_books(settings: Settings) -> list[int]:
    """Every closed batch verifies, the ledger sums to zero per currency, every booking is
    explained; returns the closed batch ids."""
    assert settings.database_url
    keys = load_seal_keys(settings)
    with connect(settings.database_url) as conn:
        closed = [
            row["batch_id"]
            for row in conn.execute(
                "SELECT batch_id FROM settlement_batch WHERE state = 'CLOSED' ORDER BY batch_id"
            ).fetchall()
        ]
        for batch_id in closed:
            assert statements.verify(conn, batch_id, keys).differences == (), batch_id
        sums = conn.execute(
            "SELECT currency, sum(CASE side WHEN 'DEBIT' THEN amount ELSE -amount END) AS net "
            "FROM ledger_posting GROUP BY currency"
        ).fetchall()
        assert all(row["net"] == 0 for row in sums), sums
        assert set(books.unexplained(conn).values()) == {0}
    return closed


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
    _close(settings, datetime(2026, 4, 1, 2, tzinfo=UTC))  # March is closed
    march = _verify_books(settings)
    assert march

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
    assert set(changed) == after | {NOW_PRICED}
    assert changed.pop(NOW_PRICED)["change"] == "now_booked"
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
    # the deltas, and the CDR that would now book at its full price
    assert Decimal(cpo["effect"]["excl_vat"]) == 3 * energy_delta + Decimal("7.25")
    assert cpo["changes"]["amount_changed"] == 3 and cpo["changes"]["now_booked"] == 1
    with report.open(encoding="utf-8") as rows:
        by_change = [row["change"] for row in csv.DictReader(rows)]
    assert len(by_change) == len(raw) and by_change.count("amount_changed") == 3

    before = _replay(settings, "--reference", f"as-of {published_before.isoformat()}")
    assert before["changes"]["same"] == len(raw)
    # NL*ABC submitted one record (rejected: no agreement), still rejected for that reason
    only_abc = _replay(settings, "--reference", "current", "--partner", "NL*ABC")
    assert only_abc["records"] == 1 and only_abc["changes"]["same"] == 1

    run_id, applied = _apply_in_april(settings)
    _apply_again(settings, applied)
    _check_applied(settings, run_id, after)
    _close(settings, None)  # April to last month: the corrections close with April
    closed = _verify_books(settings)
    assert len(closed) > len(march)


def _apply_in_april(settings: Settings) -> tuple[int, list[Correction]]:
    """`replay --reference current --apply` as if run on 15 April (its corrections' value
    time), through the command's own function; returns the run id and its corrections."""
    now = datetime.now(UTC)
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    selected = ReplayRange(topic, now - timedelta(hours=1), now + timedelta(hours=1))
    reference, run = Reference(ReferenceMode.CURRENT), ReplayRun(None)
    applied = apply_run(settings, selected, reference, run, None, True, APRIL_15)
    assert (applied.booked, applied.already) == (4, 0)
    return applied.run_id, corrections(run.changed)


def _apply_again(settings: Settings, again: list[Correction]) -> None:
    """The same corrections booked once more, straight to the store: PostgreSQL books none
    (the correction rows' constraint; the now_booked CDR's key is booked)."""
    header = replay_apply.RunHeader(
        "t", APRIL_15, APRIL_15 + timedelta(hours=1), None, Reference(ReferenceMode.CURRENT),
        "test", len(again), {},
    )  # fmt: skip
    with connect(role_url(settings, DbRole.WORKER)) as writer:
        replay_apply.lock(writer)
        applied = replay_apply.apply(writer, header, again, APRIL_15)
        writer.commit()
    assert (applied.booked, applied.already) == (0, 4)


_CORRECTIONS = """
SELECT c.cdr_key, c.change, o.transaction_id AS original, o.amount_excl_vat AS was,
       r.kind AS reversal_kind, r.amount_excl_vat AS reversed, r.rating AS reversal_rating,
       n.kind AS charge_kind, n.amount_excl_vat AS now, n.rating AS charge_rating,
       (SELECT min(value_time) FROM ledger_posting p WHERE p.transaction_id = n.transaction_id)
           AS value_time
  FROM replay_correction c
  JOIN ledger_transaction n ON n.transaction_id = c.charge_id
  LEFT JOIN ledger_transaction r ON r.transaction_id = c.reversal_id
  LEFT JOIN ledger_transaction o ON o.transaction_id = c.corrects
 WHERE c.run_id = %s
"""


def _check_applied(settings: Settings, run_id: int, after: set[str]) -> None:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        rows = {row["cdr_key"]: row for row in conn.execute(_CORRECTIONS, (run_id,)).fetchall()}
        assert set(rows) == after | {NOW_PRICED}
        now_booked = rows.pop(NOW_PRICED)
        assert (now_booked["change"], now_booked["charge_kind"]) == ("now_booked", "CHARGE")
        # the CDR's own end: a late posting of the next open batch (March is closed)
        assert now_booked["value_time"] == datetime(2026, 3, 2, 10, tzinfo=UTC)
        for row in rows.values():
            assert (row["reversal_kind"], row["charge_kind"]) == ("ADJUSTMENT", "ADJUSTMENT")
            assert row["reversed"] == -row["was"] == Decimal("-7.25")
            assert row["now"] == Decimal("7.25") + ENERGY_KWH * (PRICE_AFTER - PRICE_BEFORE)
            for rating in (row["reversal_rating"], row["charge_rating"]):
                assert rating["replay_run"] == run_id
                assert rating["adjusts_transaction"] == str(row["original"])
            assert row["value_time"] == APRIL_15  # the open period, not March
        # the same correction of the same booking twice: PostgreSQL refuses it
        with pytest.raises(psycopg.errors.UniqueViolation, match="one_correction_per_booking"):
            conn.execute(
                "INSERT INTO replay_correction (run_id, archive_id, cdr_key, change, corrects, "
                "reference_version, reversal_id, charge_id) SELECT run_id, archive_id, "
                "cdr_key, change, corrects, reference_version, reversal_id, charge_id "
                "FROM replay_correction WHERE run_id = %s LIMIT 1",
                (run_id,),
            )
        conn.rollback()
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM replay_correction")
        conn.rollback()

    again = _replay(settings, "--reference", "current", "--apply")
    assert again["changes"]["same"] == again["records"]  # compared with the corrections
    assert again["applied"]["booked"] == 0
    listed = _cli(settings, "replays", "list", "--json")
    assert [run["run_id"] for run in listed] == [again["applied"]["run_id"], run_id + 1, run_id]
    assert [run["corrections"] for run in listed] == [0, 0, 4]
    shown = _cli(settings, "replays", "show", str(run_id), "--json")
    assert shown["run"]["corrections"] == 4 and len(shown["corrections"]) == 4
