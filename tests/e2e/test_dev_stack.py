"""`roamclear dev up|status|down` as a user runs it: processes, idempotence, no orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.embedded.processes import is_alive

pytestmark = pytest.mark.e2e


def _roamclear(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["ROAMCLEAR_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_up_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _roamclear(home, "dev", "up")
    try:
        assert first.returncode == 0, first.stderr
        assert "export KAFKA_BOOTSTRAP_SERVERS='127.0.0.1:" in first.stdout
        assert "export DATABASE_URL='postgresql://" in first.stdout

        second = _roamclear(home, "dev", "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout + second.stderr
        assert second.stdout.splitlines()[-2:] == first.stdout.splitlines()[-2:]

        status = _roamclear(home, "dev", "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] is True
        pids = [report["broker_pid"], report["postgres_pid"]]
        assert all(is_alive(pid) for pid in pids)
    finally:
        down = _roamclear(home, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert not any(is_alive(pid) for pid in pids)
    after = _roamclear(home, "dev", "status", "--json")
    assert after.returncode == 1
    assert json.loads(after.stdout) == {"running": False}
