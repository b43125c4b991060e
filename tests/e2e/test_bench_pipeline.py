"""`roamclear bench pipeline --json`: its contract keys, and a paced producer that keeps pace."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.cli import roamclear

pytestmark = pytest.mark.e2e


def test_bench_pipeline_reports_its_figures(
    kafka_bootstrap: str, postgres_server_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_server_url,  # the bench makes and drops its own database
        "ROAMCLEAR_HOME": str(tmp_path),
    }
    done = roamclear(env, "bench", "pipeline", "--cdrs", "300", "--rate", "600", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["cdrs"] == 300 and figures["workers"] == 1 and figures["rate_per_s"] == 600
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    # paced at 600/s, 300 CDRs take at least half a second to produce
    assert 0 < figures["per_s"] <= 600 * 1.05
    assert 0 < figures["passthrough_per_s"] <= 600 * 1.05
    assert figures["ratio"] == pytest.approx(figures["passthrough_per_s"] / figures["per_s"], 0.01)
