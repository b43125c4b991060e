"""`roamclear bench deliver --json`: its contract keys, on a small stream."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.cli import roamclear

pytestmark = pytest.mark.e2e


def test_bench_deliver_reports_its_figures(
    kafka_bootstrap: str, postgres_server_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_server_url,  # the bench makes and drops its own databases
        "ROAMCLEAR_HOME": str(tmp_path),
    }
    done = roamclear(env, "bench", "deliver", "--cdrs", "200", "--emsps", "3", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert set(figures) == {"cdrs", "emsps", "deliveries", "per_s", "p99_ms",
                            "per_s_with_dead_emsp"}  # fmt: skip
    assert figures["cdrs"] == 200 and figures["emsps"] == 3
    assert 150 < figures["deliveries"] <= 200  # the valid CDRs and credits book
    assert figures["per_s"] > 0 and figures["p99_ms"] > 0 and figures["per_s_with_dead_emsp"] > 0
