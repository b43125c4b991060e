"""`WorkerGroup.check_alive`: a bench or the demo stops at once when a worker died."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.workers import WorkerGroup


def _process(log: Path, code: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)


def test_a_dead_worker_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "worker-0.log"
    dead = _process(log, "import sys; print('lost PostgreSQL'); sys.exit(3)")
    dead.wait()
    with pytest.raises(RuntimeError, match=r"exited with 3: lost PostgreSQL"):
        WorkerGroup([dead], [log]).check_alive()


def test_running_workers_pass_until_one_exits(tmp_path: Path) -> None:
    log = tmp_path / "worker-0.log"
    alive = _process(log, "import time; time.sleep(30)")
    group = WorkerGroup([alive], [log])
    try:
        group.check_alive()  # running: no error
        assert alive.poll() is None
    finally:
        alive.kill()
        alive.wait()
    with pytest.raises(RuntimeError, match=r"worker-0 exited with -9"):
        group.check_alive()
