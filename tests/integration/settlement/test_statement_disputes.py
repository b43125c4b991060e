"""Disputes marked on every form of a statement finance sends (`statements show`, its JSON,
the CSV and the PDF) as of now, without changing what was sealed; an adjustment's line
names its dispute and its original's period, and its VAT is at the original's rate even
when the original's breakdown has a rest line without one (migration 0021)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from pipeline.hubkeys import generate_secret
from settlement.store import disputes as store
from settlement.store.db import connect
from settlement.store.urls import with_user
from tests.integration.settlement.factories import at, book

pytestmark = pytest.mark.integration

# priced at 21 %, settled 0.0108 above its priced components: a rest line without a rate
PRICED_WITH_A_REST = [
    {"vat": "21", "excl_vat": "16.5200", "incl_vat": "19.9892"},
    {"vat": None, "excl_vat": "0.0089", "incl_vat": "0.0108", "adjustment": True},
]


def _cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def _book_dispute_and_close(settle_db: str, env: dict[str, str]) -> tuple[str, int, dict[str, int]]:
    """A May charge of DE*EMS disputed by it and accepted by a 4.00 adjustment in June; May
    and June closed. Returns the disputed key, the dispute id, and DE*EMS's batches."""
    with connect(settle_db) as admin:
        charge = book(admin, "NL*TNM", "DE*EMS", "20.0000", end=at("2025-05-10 12:00"),
                      vat_breakdown=PRICED_WITH_A_REST)  # fmt: skip
        book(admin, "NL*TNM", "DE*EMS", "8.0000", end=at("2025-05-11 12:00"))
        row = admin.execute(
            "SELECT cdr_key FROM ledger_transaction WHERE transaction_id = %s", (charge,)
        ).fetchone()
        admin.commit()
    assert row is not None
    key = str(row["cdr_key"])
    batches = {}
    for as_of, month in (("2025-06-02T00:00:00", "may"), ("2025-07-02T00:00:00", "june")):
        if month == "june":
            with connect(with_user(settle_db, "roamclear_operator")) as conn:
                opened = store.open_dispute(conn, key, "DE*EMS", "AMOUNT_INCORRECT", "5", "", "t")
                conn.execute(  # a value time in June, so that the test can close it
                    "SELECT dispute_accept_by_adjustment(%s, 4, 'cli:t', 'idle fee', %s)",
                    (opened.dispute_id, at("2025-06-10 00:00")),
                )
                conn.commit()
        closed = json.loads(_cli(env, "settle", "close", "--as-of", as_of, "--json"))
        (ems,) = [b for b in closed["batches"] if b["partner"] == "DE*EMS"]
        batches[month] = ems["id"]
    return key, opened.dispute_id, batches


def test_disputes_are_marked_on_every_form_and_the_seal_holds(
    settle_db: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": settle_db,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # named: nothing embedded starts
        "ROAMCLEAR_HUB_KEY": generate_secret(),
        "ROAMCLEAR_HOME": str(tmp_path),
        "ROAMCLEAR_SETTLEMENT_GRACE": "1h",
    }
    key, dispute_id, batches = _book_dispute_and_close(settle_db, env)
    may, june = str(batches["may"]), str(batches["june"])
    mark = f"dispute {dispute_id} accepted (DE*EMS, AMOUNT_INCORRECT)"
    adjusts = f"{mark}: adjusts {key} of period 2025-05-01..2025-06-01"

    shown = _cli(env, "statements", "show", may)
    assert "disputed lines (as of now)" in shown and mark in shown
    assert "matches the ledger and its seal" in shown  # marks are outside the seal
    as_json = json.loads(_cli(env, "statements", "show", may, "--json"))
    assert as_json["totals"]["disputed_lines"] == 1 and as_json["verification"]["matches"]
    assert [len(line["disputes"]) for line in as_json["lines"]] == [1, 0]

    exported = _cli(env, "statements", "export", june, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported)))
    totals = {r["name"]: r["value"] for r in rows if r["record"] == "total"}
    (line,) = [r for r in rows if r["record"] == "line" and r["kind"] == "ADJUSTMENT"]
    assert totals["disputed_lines"] == "1"
    assert (line["cdr_key"], line["disputes"]) == (f"DISPUTE*{dispute_id}", adjusts)
    # the adjustment's VAT at the original's one rate (the rest line no longer "unknown")
    assert {(r["name"], r["value"]) for r in rows if r["record"] == "vat"} == {
        ("EMSP 21", "-4.0000")
    }

    pdf = tmp_path / "june.pdf"
    _cli(env, "statements", "export", june, "--format", "pdf", "-o", str(pdf))
    first = pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages[0].extract_text()
    assert "Disputed lines (as of printing) 1" in first.replace("\n", " ")
    assert f"adjusts {key} of period 2025-05-01..2025-06-01" in first.replace("\n", " ")
    assert "VAT 21 %" in first and "unknown" not in first
    for batch in (may, june):
        assert json.loads(_cli(env, "statements", "verify", batch, "--json"))["matches"]


def test_an_adjustment_is_split_over_its_originals_rates_exactly(settle_db: str) -> None:
    """dispute_adjustment_vat: in proportion to what the original charged at each rate, the
    last rate taking what rounding leaves; an untaxed line (no rate, no rest) keeps no rate;
    nothing to split by gives no breakdown."""
    two_rates = [
        {"vat": "21", "excl_vat": "8.2645", "incl_vat": "10.0000"},
        {"vat": "9", "excl_vat": "4.5872", "incl_vat": "5.0000"},
        {"vat": None, "excl_vat": "1.0000", "incl_vat": "1.0000"},
    ]
    with connect(settle_db) as conn:

        def split(original: object, incl: str, excl: str) -> object:
            row = conn.execute(
                "SELECT dispute_adjustment_vat(%s::jsonb, %s, %s) AS v",
                (json.dumps(original), incl, excl),
            ).fetchone()
            assert row is not None
            return row["v"]

        parts = split(two_rates, "-1.0000", "-0.9000")
        assert isinstance(parts, list)
        assert [p["vat"] for p in parts] == ["21", "9", None]
        assert sum(Decimal(p["incl_vat"]) for p in parts) == Decimal("-1.0000")
        assert sum(Decimal(p["excl_vat"]) for p in parts) == Decimal("-0.9000")
        assert Decimal(parts[0]["incl_vat"]) == Decimal("-0.6250")  # 10 of 16
        assert split(PRICED_WITH_A_REST, "-4", "-3.3058") == [
            {"vat": "21", "excl_vat": "-3.3058", "incl_vat": "-4.0000"}
        ]
        assert split(None, "1", "1") is None
        assert split([{"vat": "21", "excl_vat": "0", "incl_vat": "0"}], "1", "1") is None
        assert split([{"vat": "21", "incl_vat": "x"}], "1", "1") is None
