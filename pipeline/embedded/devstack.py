"""`roamclear dev`: the embedded broker and PostgreSQL as one background stack.

State lives in `<home>/dev.json` (pids, ports, URLs); a lock file serialises concurrent
`dev up` calls, and a second `dev up` while the stack runs reports it instead of failing.
Real servers named by `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` are used as they are and
never started or stopped here.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from pipeline.config import Settings
from pipeline.embedded.broker import start_broker, stop_broker
from pipeline.embedded.postgres import start_postgres, stop_postgres
from pipeline.embedded.processes import is_alive
from pipeline.kafka.admin import create_topics
from pipeline.topics import topic_specs
from settlement.store.migrate import apply_migrations
from settlement.store.urls import with_database

SANDBOX_DATABASE = "roamclear"


@dataclass(frozen=True, slots=True)
class StackState:
    """What `dev up` started (None where a real server was configured instead)."""

    bootstrap_servers: str
    database_url: str
    broker_pid: int | None
    postgres_pid: int | None
    pgdata: str | None

    def running(self) -> bool:
        pids = [pid for pid in (self.broker_pid, self.postgres_pid) if pid is not None]
        return all(is_alive(pid) for pid in pids)

    def exports(self) -> str:
        return (
            f"export KAFKA_BOOTSTRAP_SERVERS='{self.bootstrap_servers}'\n"
            f"export DATABASE_URL='{self.database_url}'"
        )


def _state_path(settings: Settings) -> Path:
    return settings.home / "dev.json"


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    settings.home.mkdir(parents=True, exist_ok=True)
    with (settings.home / "dev.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_state(settings: Settings) -> StackState | None:
    path = _state_path(settings)
    if not path.exists():
        return None
    return StackState(**json.loads(path.read_text()))


def up(settings: Settings) -> tuple[StackState, bool]:
    """Start what is not configured, migrate, create topics. Returns (state, started_now).

    The embedded stack is a disposable sandbox: the broker keeps its data only in memory, so
    a freshly started embedded broker gets a fresh embedded database too (the books must
    describe the events the broker holds). Real servers are never reset.
    """
    with _locked(settings):
        state = read_state(settings)
        if state is not None and state.running():
            _prepare(settings, state)  # idempotent: a newer roamclear may add migrations
            return state, False
        if state is not None:
            _stop(state)  # half-dead leftovers of an earlier run: clear them before starting
            _state_path(settings).unlink()
        state = _start(settings)
        try:
            _prepare(settings, state)
        except Exception:
            _stop(state)
            raise
        _state_path(settings).write_text(json.dumps(asdict(state), indent=2))
        return state, True


def _start(settings: Settings) -> StackState:
    broker_pid = postgres_pid = None
    pgdata = None
    bootstrap = settings.kafka_bootstrap_servers
    if bootstrap is None:
        broker = start_broker(settings.home / "broker.log")
        bootstrap, broker_pid = broker.bootstrap_servers, broker.pid
    database_url = settings.database_url
    if database_url is None:
        try:
            postgres = start_postgres(settings.home / "pgdata")
        except Exception:
            if broker_pid is not None:
                stop_broker(broker_pid)
            raise
        database_url = with_database(postgres.url, SANDBOX_DATABASE)
        postgres_pid, pgdata = postgres.pid, str(postgres.pgdata)
        if broker_pid is not None:
            _recreate_database(postgres.url, SANDBOX_DATABASE)
    return StackState(bootstrap, database_url, broker_pid, postgres_pid, pgdata)


def _recreate_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def _prepare(settings: Settings, state: StackState) -> None:
    apply_migrations(state.database_url)
    create_topics(state.bootstrap_servers, topic_specs(settings.topic_prefix))


def _stop(state: StackState) -> None:
    if state.broker_pid is not None:
        stop_broker(state.broker_pid)
    if state.pgdata is not None:
        stop_postgres(Path(state.pgdata))


def down(settings: Settings) -> StackState | None:
    """Stop what `dev up` started; returns what was stopped (None: nothing was running)."""
    with _locked(settings):
        state = read_state(settings)
        if state is None:
            return None
        _stop(state)
        _state_path(settings).unlink()
        return state


def resolve(settings: Settings) -> Settings:
    """Settings with both servers named: configured ones, else the dev stack (started if needed)."""
    if settings.kafka_bootstrap_servers and settings.database_url:
        return settings
    state, _ = up(settings)
    return settings.with_servers(
        settings.kafka_bootstrap_servers or state.bootstrap_servers,
        settings.database_url or state.database_url,
    )
