"""An idle `roamclear worker` whose PostgreSQL or broker dies exits non-zero within seconds,
with one clear line instead of a retry loop's flood, and SIGTERM stops a worker within
seconds whether its servers answer or not. Each test kills servers of its own (a throwaway
Tansu or pgserver), never the session's.

Measured on the 2-core machine (docs/clearing.md): exit about 12 s after PostgreSQL died and
17 s after the broker died (before: never); SIGTERM stop 1.1 s healthy or without
PostgreSQL, 6.1 s without the broker (before: 61 s). The bounds below leave room for a busy
machine while staying under the old behaviour.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from pipeline.config import Settings
from pipeline.embedded.broker import BrokerHandle, start_broker, stop_broker
from pipeline.embedded.postgres import (
    PostgresHandle,
    postmaster_pid,
    start_postgres,
    stop_postgres,
)
from pipeline.embedded.processes import is_alive
from pipeline.kafka.admin import create_topics
from pipeline.topics import topic_specs
from settlement.store.migrate import apply_migrations
from settlement.store.urls import with_database
from tests.e2e.workers import Workers, log_text, wait_until, workers

pytestmark = pytest.mark.e2e
EXIT_AFTER_LOSS_S_MAX = 90.0  # measured 12-17 s
SIGTERM_STOP_S_MAX = 30.0  # measured 1.1-6.1 s; 61 s before the fix


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    broker = start_broker(tmp_path / "tansu.log")
    try:
        yield broker
    finally:
        stop_broker(broker.pid)


@pytest.fixture
def own_postgres() -> Iterator[PostgresHandle]:
    # not under tmp_path: as root the server runs as `pgserver`, which must traverse it
    directory = Path(tempfile.mkdtemp(prefix="roamclear-liveness-"))
    handle = start_postgres(directory / "pgdata")
    try:
        yield handle
    finally:
        stop_postgres(handle.pgdata)
        shutil.rmtree(directory, ignore_errors=True)


def _on_own_broker(settings: Settings, broker: BrokerHandle) -> Settings:
    create_topics(broker.bootstrap_servers, topic_specs(settings.topic_prefix))
    return replace(settings, kafka_bootstrap_servers=broker.bootstrap_servers)


def _on_own_postgres(settings: Settings, postgres: PostgresHandle) -> Settings:
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute('CREATE DATABASE "roamclear"')
    url = with_database(postgres.url, "roamclear")
    apply_migrations(url)
    return replace(settings, database_url=url)


def _idle_worker(group: Workers) -> subprocess.Popen[bytes]:
    process = group.start()
    wait_until(
        lambda: all(
            text in log_text(group.log_dir)
            for text in ("clearing agent started", "Setting newly assigned partitions")
        ),
        "the worker to be ready",
        group,
    )
    time.sleep(2.0)  # idle for a moment: the watchdog has checked both servers
    return process


def _kill_postgres(postgres: PostgresHandle) -> None:
    pid = postmaster_pid(postgres.pgdata)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def _kill_broker(broker: BrokerHandle) -> None:
    os.kill(broker.pid, signal.SIGKILL)
    wait_until(lambda: not is_alive(broker.pid), "the broker to die")


def _the_one_exit_line(log: str) -> str:
    lines = [line for line in log.splitlines() if "exits for its supervisor to restart" in line]
    assert len(lines) == 1, lines
    return lines[0]


def _exit_code_within(process: subprocess.Popen[bytes], timeout_s: float, what: str) -> int:
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker still ran {timeout_s:.0f} s after {what}") from None


def test_an_idle_worker_exits_soon_after_its_postgresql_dies(
    fresh_settings: Settings, own_postgres: PostgresHandle, tmp_path: Path
) -> None:
    settings = _on_own_postgres(fresh_settings, own_postgres)
    with workers(settings, tmp_path) as group:
        worker = _idle_worker(group)
        group.expected_exits.add(worker.pid)
        _kill_postgres(own_postgres)
        code = _exit_code_within(worker, EXIT_AFTER_LOSS_S_MAX, "its PostgreSQL died")
    assert code != 0
    assert "PostgreSQL" in _the_one_exit_line(log_text(tmp_path))


def test_an_idle_worker_exits_soon_after_its_broker_dies_without_a_flood_of_lines(
    fresh_settings: Settings, own_broker: BrokerHandle, tmp_path: Path
) -> None:
    settings = _on_own_broker(fresh_settings, own_broker)
    with workers(settings, tmp_path) as group:
        worker = _idle_worker(group)
        group.expected_exits.add(worker.pid)
        _kill_broker(own_broker)
        code = _exit_code_within(worker, EXIT_AFTER_LOSS_S_MAX, "its broker died")
    assert code != 0
    log = log_text(tmp_path)
    assert "the broker out of reach" in _the_one_exit_line(log)
    # aiokafka logged each 100 ms retry: about 60 lines a second, hundreds before an exit
    assert log.count("Unable connect to node") <= 3
    assert log.count("Failed fetch messages") <= 3


@pytest.mark.parametrize("gone", ["nothing", "postgres", "broker"])
def test_sigterm_stops_a_worker_within_seconds(
    gone: str, fresh_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = fresh_settings
    if gone == "postgres":
        postgres: PostgresHandle = request.getfixturevalue("own_postgres")
        settings = _on_own_postgres(settings, postgres)
    elif gone == "broker":
        broker: BrokerHandle = request.getfixturevalue("own_broker")
        settings = _on_own_broker(settings, broker)
    with workers(settings, tmp_path) as group:
        worker = _idle_worker(group)
        if gone == "postgres":
            _kill_postgres(postgres)
        elif gone == "broker":
            _kill_broker(broker)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _exit_code_within(worker, SIGTERM_STOP_S_MAX, "SIGTERM")
        stop_s = time.monotonic() - started
    assert stop_s < SIGTERM_STOP_S_MAX
