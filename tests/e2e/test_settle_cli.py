"""The closer and statements as processes: ``settle close``, ``statements …``, and the
periodic ``settle run`` stopping cleanly on SIGTERM. Runs the sub-apps directly (the lead
mounts them in ``roamclear``), each against its own fresh database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pypdf
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.api.serving import free_port
from pipeline.hubkeys import generate_secret
from settlement.store.db import connect
from tests.integration.settlement.factories import at, book, partner

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
HUB_KEY = generate_secret()


def _command(module: str, database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-c", f"from pipeline.cli.{module} import app; app()", *args]


def _env(database_url: str) -> dict[str, str]:
    # both servers named: nothing embedded is started (the closer needs no broker)
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "PYTHONPATH": str(ROOT),
        "ROAMCLEAR_SETTLEMENT_GRACE": "1h",
        # the closer seals with it and verify checks with it: one keyring for both processes
        "ROAMCLEAR_HUB_KEY": HUB_KEY,
    }


def _run(module: str, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(module, database_url, *args),
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_close_list_show_export_verify(fresh_database_url: str, tmp_path: Path) -> None:
    with connect(fresh_database_url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", "0.1500")
        book(conn, "NL*TNM", "DE*EMS", "2.0001", "0.0300")
        conn.commit()
    closed = _run("settle", fresh_database_url, "close", "--as-of", "2025-06-02T00:00:00", "--json")
    assert closed.returncode == 0, closed.stderr
    report = json.loads(closed.stdout)
    assert {b["partner"] for b in report["batches"]} == {"NL*TNM", "DE*EMS"}
    listed = _run("statements", fresh_database_url, "list", "--partner", "nl*tnm", "--json")
    [tnm] = json.loads(listed.stdout)
    assert tnm["net_amount"] == "11.8200" and tnm["postings"] == 3  # 11.8201 rounded, + rounding
    assert _run("statements", fresh_database_url, "verify", str(tnm["id"])).returncode == 0
    pdf = tmp_path / "s.pdf"
    exported = _run(
        "statements",
        fresh_database_url,
        "export",
        str(tnm["id"]),
        "--format",
        "pdf",
        "-o",
        str(pdf),
    )
    assert exported.returncode == 0, exported.stderr
    assert "11.82" in pypdf.PdfReader(pdf).pages[0].extract_text()
    as_csv = _run("statements", fresh_database_url, "export", str(tnm["id"]), "--format", "csv")
    assert "total,net_amount,11.8200" in as_csv.stdout
    with connect(fresh_database_url) as conn:
        partner(conn, "NL*TNM", "CPO")
        conn.commit()
    token = _run("statements", fresh_database_url, "token", "create", "--partner", "NL*TNM")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40
    again = _run("settle", fresh_database_url, "close", "--as-of", "2025-06-02T00:00:00", "--json")
    assert json.loads(again.stdout)["batches"] == []
    assert _run("statements", fresh_database_url, "verify", "999").returncode == 2


def test_settle_run_stops_cleanly_on_sigterm(fresh_database_url: str) -> None:
    with connect(fresh_database_url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", end=at("2025-05-10 12:00"))
        conn.commit()
    port = free_port()
    process = subprocess.Popen(
        _command(
            "settle",
            fresh_database_url,
            "run",
            "--every",
            "1s",
            "--json",
            "--metrics-port",
            str(port),
        ),
        env=_env(fresh_database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with connect(fresh_database_url) as conn:
                row = conn.execute("SELECT count(*) AS n FROM settlement_batch").fetchone()
            if row and row["n"]:
                break
            time.sleep(0.2)
        metrics = _closer_metrics(port, deadline)
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "settlement closer stopped" in err
    # its first close closed both partners' batches; the closes after it found nothing
    assert metrics["roamclear_closer_runs_total"][("closed",)] == 1
    assert metrics["roamclear_closer_statements_total"][()] == 2
    assert metrics["roamclear_closer_run_duration_seconds_count"][()] >= 1
    assert metrics["roamclear_closer_last_success_timestamp_seconds"][()] > 0
    # its last close did not fail: ready (the probes of deploy/ ask these)
    assert (ready.status_code, ready.json()["ready"]) == (200, True)
    assert health.json() == {"status": "up"}


def _closer_metrics(port: int, deadline: float) -> dict[str, dict[tuple[str, ...], float]]:
    """The closer's /metrics once its first close has been counted."""
    while True:
        found: dict[str, dict[tuple[str, ...], float]] = {}
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = tuple(sample.labels.values())
                found.setdefault(sample.name, {})[labels] = sample.value
        if found.get("roamclear_closer_runs_total") or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_show_export_and_list_say_when_a_statement_no_longer_verifies(
    fresh_database_url: str,
) -> None:
    with connect(fresh_database_url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", "0.1500")
        conn.commit()
    closed = _run("settle", fresh_database_url, "close", "--as-of", "2025-06-02T00:00:00", "--json")
    ids = {b["partner"]: b["id"] for b in json.loads(closed.stdout)["batches"]}
    assert all(len(b["seal"]) == 64 for b in json.loads(closed.stdout)["batches"])
    shown = _run("statements", fresh_database_url, "show", str(ids["NL*TNM"]))
    assert "matches the ledger and its seal" in shown.stdout
    with connect(fresh_database_url) as conn:
        conn.execute("SET session_replication_role = replica")  # a superuser, triggers off
        conn.execute(
            "UPDATE ledger_posting SET amount = amount + 1 WHERE account LIKE 'partner:NL%'"
        )
        conn.execute(
            "UPDATE settlement_batch SET credit_total = credit_total + 1"
            f" WHERE batch_id = {ids['DE*EMS']}"
        )
        conn.commit()
    shown = _run("statements", fresh_database_url, "show", str(ids["NL*TNM"]))
    assert shown.returncode == 0 and "is NOT verified" in shown.stdout
    assert "9.8500" in shown.stdout and "credit: stored 9.8500, ledger 10.8500" in shown.stdout
    as_json = json.loads(
        _run("statements", fresh_database_url, "show", str(ids["NL*TNM"]), "--json").stdout
    )
    assert as_json["verification"]["matches"] is False and as_json["net_amount"] == "9.8500"
    exported = _run(
        "statements", fresh_database_url, "export", str(ids["NL*TNM"]), "--format", "csv"
    )
    assert exported.returncode == 1 and exported.stdout == "" and "not exported" in exported.stderr
    assert _run("statements", fresh_database_url, "verify", str(ids["NL*TNM"])).returncode == 1
    listed = _run("statements", fresh_database_url, "list", "--json")
    seals = {s["partner"]: s["seal_status"] for s in json.loads(listed.stdout)}
    assert seals == {"NL*TNM": "VALID", "DE*EMS": "INVALID"}  # the list reads stored rows only
    assert "1 of 2 statements fail their seal check" in listed.stderr


def test_tokens_are_listed_without_secrets_revoked_and_made_to_expire(
    fresh_database_url: str,
) -> None:
    def token(*args: str) -> subprocess.CompletedProcess[str]:
        return _run("statements", fresh_database_url, "token", *args)

    refused = token("create", "--partner", "NL*TNM")
    assert refused.returncode == 2 and "not a registered partner" in refused.stderr
    with connect(fresh_database_url) as conn:
        partner(conn, "NL*TNM", "CPO")
        conn.commit()
    made = token("create", "--partner", "NL*TNM", "--label", "TNM finance", "--expires", "90d")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    finance = token("create", "--finance", "--expires", "2999-01-01")
    assert finance.returncode == 0, finance.stderr
    assert token("create", "--finance", "--expires", "2020-01-01").returncode == 2
    listed = token("list", "--json")
    rows = {r["scope"]: r for r in json.loads(listed.stdout)}
    assert secret not in listed.stdout and finance.stdout.strip() not in listed.stdout
    tnm = rows["PARTNER"]
    assert tnm["partner"] == "NL*TNM" and tnm["label"] == "TNM finance"
    assert tnm["status"] == "ACTIVE" and tnm["revoked_at"] is None
    assert tnm["expires_at"] is not None and tnm["expires_at"].startswith(
        (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")
    )
    assert rows["FINANCE"]["expires_at"] == "2999-01-01T00:00:00+00:00"
    assert tnm["id"] in made.stderr  # shown at creation, to revoke it later
    revoked = token("revoke", tnm["id"], "--reason", "rotated")
    assert revoked.returncode == 0, revoked.stderr
    assert token("revoke", tnm["id"]).returncode == 2  # already revoked
    assert token("revoke", "nothex").returncode == 2
    after = {r["id"]: r for r in json.loads(token("list", "--json").stdout)}
    assert after[tnm["id"]]["status"] == "REVOKED" and after[tnm["id"]]["revoked_at"]
    table = token("list")
    assert table.returncode == 0 and "REVOKED" in table.stdout and secret not in table.stdout


def test_statements_list_gives_every_statement_or_says_what_it_left_out(
    fresh_database_url: str,
) -> None:
    with connect(fresh_database_url) as conn:
        for day in range(4):  # 8 daily batches
            end = at("2025-05-01 12:00") + timedelta(days=day)
            book(conn, "NL*TNM", "DE*EMS", "10.0000", end=end, kind="DAILY")
        conn.commit()
    assert (
        _run("settle", fresh_database_url, "close", "--as-of", "2025-06-02T00:00:00").returncode
        == 0
    )
    every = _run("statements", fresh_database_url, "list", "--json")
    assert len(json.loads(every.stdout)) == 8 and "showing" not in every.stderr
    some = _run("statements", fresh_database_url, "list", "--limit", "3", "--json")
    assert some.returncode == 0, some.stderr
    assert len(json.loads(some.stdout)) == 3 and "showing 3 of 8 statements" in some.stderr
