"""Running `roamclear worker` processes against the test session's servers."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from pipeline.config import Settings
from pipeline.kafka.admin import create_topics
from pipeline.topics import CDR_PARTITIONS, Topic, topic_name, topic_specs
from pipeline.workers import WORKER_COMMAND, worker_env
from settlement.store import books
from settlement.store.db import connect
from tests.conftest import scratch_database

WAIT_S_MAX = 120.0


class Workers:
    """Processes of one consumer group (`roamclear worker`, or `command`: `roamclear
    deliver`), with extra environment; stops (or kills) them all at exit."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        command: tuple[str, ...] = WORKER_COMMAND,
        name: str = "worker",
        **env: str,
    ) -> None:
        self.settings = settings
        self.app_id = f"rc-test-{uuid.uuid4().hex[:8]}"
        self.log_dir = log_dir
        self.command = command
        self.name = name
        self.env = {"ROAMCLEAR_CLEARING_BATCH_MAX": "200", **env}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.expected_exits: set[int] = set()  # pids a test stopped on purpose

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{self.name}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            list(self.command),
            env=worker_env(
                self.settings,
                self.settings.home / self.app_id,
                self.app_id,
                ROAMCLEAR_DELIVERY_APP_ID=f"{self.app_id}-deliveries",
                **self.env,
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def check_alive(self) -> None:
        """Fail at once, with the log, when a worker died that the test did not kill."""
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code is not None and code != -9 and process.pid not in self.expected_exits:
                log = (self.log_dir / f"{self.name}-{index}.log").read_text(errors="replace")
                raise AssertionError(f"{self.name} {index} exited with {code}:\n{log[-3000:]}")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def workers(
    settings: Settings,
    log_dir: Path,
    command: tuple[str, ...] = WORKER_COMMAND,
    name: str = "worker",
    **env: str,
) -> Iterator[Workers]:
    group = Workers(settings, log_dir, command, name, **env)
    try:
        yield group
    finally:
        group.stop_all()


@contextmanager
def own_servers(
    settings: Settings, server_url: str, template: str, cdr_partitions: int = CDR_PARTITIONS
) -> Iterator[Settings]:
    """`settings` with a database and topic set of their own (CDR-keyed topics of
    `cdr_partitions` partitions), for comparing two runs of the same input."""
    assert settings.kafka_bootstrap_servers
    with scratch_database(server_url, "roamclear_t", template) as url:
        prefix = f"rct{uuid.uuid4().hex[:10]}"
        specs = topic_specs(prefix, cdr_partitions=cdr_partitions)
        create_topics(settings.kafka_bootstrap_servers, specs)
        yield replace(settings, database_url=url, topic_prefix=prefix)


def counts(settings: Settings, submitted: int) -> dict[str, int]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        return books.counts(conn, topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED), submitted)


def wait_until(
    predicate: Callable[[], bool],
    what: str,
    group: Workers | None = None,
    timeout_s: float = WAIT_S_MAX,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if group is not None:
            group.check_alive()
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_for_books(settings: Settings, submitted: int, group: Workers) -> dict[str, int]:
    wait_until(
        lambda: counts(settings, submitted)["pending"] == 0, "every event to be decided", group
    )
    return counts(settings, submitted)


def balances(settings: Settings) -> dict[tuple[str, str], object]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        return {(b["account"], b["currency"]): b["balance"] for b in books.balances(conn)}


def log_text(log_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("worker-*.log")))
