"""`roamclear bench ingest --json`: its contract keys, every CDR acked and on the topic (the
command fails otherwise), and no scratch database left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from tests.e2e.cli import roamclear

pytestmark = pytest.mark.e2e
CONTRACT = {"clients", "cdrs", "per_s", "p50_ms", "p99_ms", "floor_per_s", "ratio"}


def _bench_databases(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'roamclear_bench_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_bench_ingest_reports_its_figures(
    kafka_bootstrap: str, postgres_server_url: str, tmp_path: Path
) -> None:
    before = _bench_databases(postgres_server_url)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_server_url,  # the bench makes and drops its own database
        "ROAMCLEAR_HOME": str(tmp_path),
    }
    done = roamclear(env, "bench", "ingest", "--clients", "3", "--cdrs", "31", "--json")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    figures = json.loads(done.stdout)
    assert set(figures) >= CONTRACT
    assert figures["clients"] == 3 and figures["cdrs"] == 30  # a multiple of the clients
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert figures["per_s"] > 0 and figures["floor_per_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["floor_per_s"] / figures["per_s"], 0.01)
    # CPU from /proc counts in clock ticks (10 ms): 30 no-ops may take less than one
    assert figures["server_cpu_us"] > 0 and figures["floor_server_cpu_us"] >= 0
    assert _bench_databases(postgres_server_url) == before

    table = roamclear(env, "bench", "ingest", "--clients", "2", "--cdrs", "4")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "CDR POSTs/s" in table.stdout and "HTTP floor" in table.stdout
