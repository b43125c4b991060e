"""`roamclear bench clearing --json`: per-step CPU figures of the worker's own clearing path,
counts that account for every record, and no scratch database left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from tests.e2e.cli import roamclear

pytestmark = pytest.mark.e2e
STEPS = ("decode_us", "decide_us", "events_us", "rows_us")


def _bench_databases(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'roamclear_bench_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_bench_clearing_reports_each_step(
    postgres_server_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    before = _bench_databases(postgres_server_url)
    # both servers named: without a broker, the command would start an embedded one in
    # tmp_path that nothing stops
    env = {
        **os.environ,
        "DATABASE_URL": postgres_server_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ROAMCLEAR_HOME": str(tmp_path),
    }
    done = roamclear(env, "bench", "clearing", "--cdrs", "400", "--runs", "2", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["cdrs"] == 400 and figures["runs"] == 2
    # the simulated mix: mostly bookings, some exact duplicates and rejections, nothing lost
    assert figures["booked"] + figures["duplicates"] + figures["rejected"] == 400
    assert figures["booked"] > 300 and figures["duplicates"] > 0 and figures["rejected"] > 0
    assert all(figures[step] > 0 for step in STEPS)
    assert figures["total_us"] == pytest.approx(sum(figures[s] for s in STEPS), abs=0.3)
    assert figures["ceiling_per_core_s"] == pytest.approx(1e6 / figures["total_us"], rel=0.01)
    assert _bench_databases(postgres_server_url) == before
