"""Starting `roamclear worker` processes from another command (demo, benchmarks) and waiting
until they have joined their consumer group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import Settings
from pipeline.hubkeys import hub_key_env

READY_WAIT_S_MAX = 60.0


def worker_env(settings: Settings, home: Path, app_id: str, **extra: str) -> dict[str, str]:
    """The environment of a worker on `settings`' servers and topics, with short consumer
    sessions (rebalances take seconds, not faust's default minute)."""
    assert settings.kafka_bootstrap_servers and settings.database_url
    env = dict(os.environ)
    env.update(hub_key_env(settings))
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        DATABASE_URL=settings.database_url,
        ROAMCLEAR_TOPIC_PREFIX=settings.topic_prefix,
        ROAMCLEAR_HOME=str(home),
        ROAMCLEAR_APP_ID=app_id,
        ROAMCLEAR_SESSION_TIMEOUT_S="6",
        ROAMCLEAR_HEARTBEAT_INTERVAL_S="0.5",
        **extra,
    )
    return env


WORKER_COMMAND = (sys.executable, "-m", "pipeline.cli", "worker", "--loglevel", "info")
DELIVER_COMMAND = (sys.executable, "-m", "pipeline.cli", "deliver", "--loglevel", "info")


class WorkerGroup:
    """Worker processes started for a command, and a check that none died meanwhile."""

    def __init__(self, processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
        self.processes = processes
        self.logs = logs

    def check_alive(self) -> None:
        """Raise with the end of its log when a worker exited (a bench or the demo would
        otherwise wait for books that nobody clears until its timeout)."""
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{log.stem} exited with {process.returncode}: {tail}")


@contextmanager
def worker_processes(
    settings: Settings,
    count: int,
    log_dir: Path,
    passthrough_to: str | None = None,
    command: tuple[str, ...] = WORKER_COMMAND,
    name: str = "worker",
) -> Iterator[WorkerGroup]:
    """`count` processes of `command` (`roamclear worker`, or `roamclear deliver`) in one new
    consumer group, ready when this yields; stopped at exit."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    env = worker_env(settings, log_dir, run_id, ROAMCLEAR_DELIVERY_APP_ID=f"{run_id}-deliveries")
    command = (*command, "--passthrough-to", passthrough_to) if passthrough_to else command
    logs = [log_dir / f"{name}-{i}.log" for i in range(count)]
    processes = [
        subprocess.Popen(list(command), env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        for log in logs
    ]
    group = WorkerGroup(processes, logs)
    try:
        _wait_ready(group)
        yield group
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_ready(group: WorkerGroup) -> None:
    """Until every worker has joined the group and has partitions assigned."""
    deadline = time.monotonic() + READY_WAIT_S_MAX
    while time.monotonic() < deadline:
        group.check_alive()
        texts = [log.read_text(errors="replace") for log in group.logs]
        if all(
            "Worker]: Ready" in text and "Setting newly assigned partitions" in text
            for text in texts
        ):
            time.sleep(1.0)  # let the last rebalance settle
            return
        time.sleep(0.2)
    raise TimeoutError("workers did not become ready")
