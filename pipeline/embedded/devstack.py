"""`roamclear dev`: the embedded broker and PostgreSQL as one background stack.

What `dev up` started is recorded in `<home>/dev.json` (mode 0600, like the lock file that
serialises concurrent calls). Whether a component runs is asked of the real process and its
port or socket, never read from a stored pid, and `dev up` decides per component:

| component  | running and answering | gone                                                     |
| ---------- | --------------------- | -------------------------------------------------------- |
| broker     | kept                  | a new one on a new port; the events the old one held in  |
|            |                       | memory are gone (clients must restart); database kept    |
| PostgreSQL | kept                  | started again on its data directory: nothing is lost     |

A live broker is never stopped and the sandbox database never dropped, except by
`dev up --reset`, which empties both (a new broker and a new database). Real servers named by
`KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` are used as they are: never started, stopped or
reset here, never written to dev.json, and shown with their password masked.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from pipeline.config import Settings
from pipeline.embedded import EmbeddedError
from pipeline.embedded.broker import (
    broker_answers,
    is_broker_process,
    start_broker,
    stop_broker,
)
from pipeline.embedded.postgres import (
    log_path,
    postgres_answers,
    postmaster_pid,
    start_postgres,
    stop_postgres,
)
from pipeline.embedded.processes import open_private, write_private
from pipeline.kafka.admin import BrokerUnavailable, create_topics
from pipeline.topics import topic_specs
from settlement.store.migrate import apply_migrations
from settlement.store.urls import redacted, with_database

SANDBOX_DATABASE = "roamclear"


class StackError(EmbeddedError):
    """A component of the stack is in a state `dev up` must not repair by itself (a broker
    that runs but does not answer, a configured server out of reach); the message says
    what to check."""


class Component(enum.StrEnum):
    BROKER = "broker"
    POSTGRES = "postgres"


class Health(enum.StrEnum):
    RUNNING = "running"  # the process lives and answers on its port or socket
    NOT_ANSWERING = "not answering"  # the process lives (or is configured) but did not answer
    DEAD = "dead"  # dev.json names it, but its process has gone (or its pid is another's now)
    NOT_STARTED = "not started"  # dev up has not started it (or dev down stopped it)


class Action(enum.StrEnum):
    KEPT = "kept"  # it was running and answering
    STARTED = "started"  # nothing was running
    RESTARTED = "restarted"  # dev.json named it but it had gone
    RESET = "reset"  # --reset: a new broker, a new sandbox database
    CONFIGURED = "configured"  # a real server named by the environment, not managed here


@dataclass(frozen=True, slots=True)
class StackState:
    """What `dev up` started (None where it started nothing): the contents of dev.json."""

    bootstrap_servers: str | None
    database_url: str | None  # the sandbox database on the embedded PostgreSQL
    broker_pid: int | None
    postgres_pid: int | None
    pgdata: str | None

    @property
    def broker_port(self) -> int | None:
        if self.bootstrap_servers is None:
            return None
        return urlsplit(f"//{self.bootstrap_servers}").port


EMPTY = StackState(None, None, None, None, None)


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component as it is now, checked on the real process and port."""

    component: Component
    health: Health
    managed: bool  # started by `dev up` (False: a real server from the environment)
    address: str | None  # bootstrap servers or database URL, password masked
    pid: int | None
    log: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, enum.Enum) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class StackUp:
    """What `dev up` did per component, and what the user should know about it."""

    state: StackState
    actions: dict[Component, Action]
    notices: tuple[str, ...]
    bootstrap_servers: str  # the servers to use: configured, else the embedded ones
    database_url: str

    def fresh(self) -> bool:
        """Nothing of the embedded stack was running before this call."""
        return Action.KEPT not in self.actions.values()

    def exports(self) -> str:
        """Shell exports of the embedded servers; configured ones are already in the
        environment (and their URLs may hold a password)."""
        lines = []
        if self.actions[Component.BROKER] != Action.CONFIGURED:
            lines.append(f"export KAFKA_BOOTSTRAP_SERVERS='{self.bootstrap_servers}'")
        if self.actions[Component.POSTGRES] != Action.CONFIGURED:
            lines.append(f"export DATABASE_URL='{self.database_url}'")
        return "\n".join(lines)


def _state_path(settings: Settings) -> Path:
    return settings.home / "dev.json"


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    settings.home.mkdir(parents=True, exist_ok=True)
    fd = open_private(settings.home / "dev.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_state(settings: Settings) -> StackState | None:
    path = _state_path(settings)
    if not path.exists():
        return None
    path.chmod(0o600)  # written world-readable by earlier versions
    fields = json.loads(path.read_text())
    state = StackState(**{name: fields.get(name) for name in StackState.__dataclass_fields__})
    # Earlier versions stored configured servers too (passwords included); only what dev up
    # started belongs here.
    if state.broker_pid is None:
        state = replace(state, bootstrap_servers=None)
    if state.postgres_pid is None and state.pgdata is None:
        state = replace(state, database_url=None)
    return state


def _write_state(settings: Settings, state: StackState) -> None:
    write_private(_state_path(settings), json.dumps(asdict(state), indent=2))


def status(settings: Settings) -> tuple[ComponentStatus, ComponentStatus]:
    """The broker and PostgreSQL that `dev up` would use, as they are now."""
    state = read_state(settings) or EMPTY
    return broker_status(settings, state), postgres_status(settings, state)


def broker_status(settings: Settings, state: StackState) -> ComponentStatus:
    configured = settings.kafka_bootstrap_servers
    if configured is not None:
        health = Health.RUNNING if broker_answers(configured) else Health.NOT_ANSWERING
        return ComponentStatus(Component.BROKER, health, False, configured, None, None)
    log = str(settings.home / "broker.log")
    pid, port = state.broker_pid, state.broker_port
    if pid is None or port is None:
        return ComponentStatus(Component.BROKER, Health.NOT_STARTED, True, None, None, log)
    if not is_broker_process(pid, port):
        health = Health.DEAD
    elif broker_answers(state.bootstrap_servers or ""):
        health = Health.RUNNING
    else:
        health = Health.NOT_ANSWERING
    return ComponentStatus(Component.BROKER, health, True, state.bootstrap_servers, pid, log)


def postgres_status(settings: Settings, state: StackState) -> ComponentStatus:
    configured = settings.database_url
    if configured is not None:
        health = Health.RUNNING if postgres_answers(configured) else Health.NOT_ANSWERING
        return ComponentStatus(Component.POSTGRES, health, False, redacted(configured), None, None)
    pgdata = Path(state.pgdata) if state.pgdata else settings.home / "pgdata"
    log = str(log_path(pgdata))
    if state.pgdata is None or state.database_url is None:
        return ComponentStatus(Component.POSTGRES, Health.NOT_STARTED, True, None, None, log)
    pid = postmaster_pid(pgdata)  # PostgreSQL's own lock file, not the pid we stored
    if pid is None:
        health = Health.DEAD
    elif postgres_answers(state.database_url):
        health = Health.RUNNING
    else:
        health = Health.NOT_ANSWERING
    return ComponentStatus(Component.POSTGRES, health, True, state.database_url, pid, log)


def up(settings: Settings, reset: bool = False) -> StackUp:
    """Start what is gone, keep what runs, migrate, create topics (see the module's table)."""
    with _locked(settings):
        state = read_state(settings) or EMPTY
        notices: list[str] = []
        state, postgres_action = _ensure_postgres(settings, state, notices)
        _write_state(settings, state)
        state, broker_action = _ensure_broker(settings, state, reset, notices)
        _write_state(settings, state)
        bootstrap = settings.kafka_bootstrap_servers or state.bootstrap_servers
        database_url = settings.database_url or state.database_url
        assert bootstrap is not None and database_url is not None
        if postgres_action != Action.CONFIGURED:
            created = _ensure_sandbox_database(database_url, reset)
            if broker_action in (Action.STARTED, Action.RESTARTED) and not created:
                notices.append(
                    f"the database {SANDBOX_DATABASE} was kept: it may describe events the "
                    "new broker does not hold (`roamclear dev up --reset` empties both)"
                )
            if reset:
                postgres_action = Action.RESET
        elif reset:
            notices.append("--reset leaves the configured PostgreSQL (DATABASE_URL) alone")
        if reset and broker_action == Action.CONFIGURED:
            notices.append("--reset leaves the configured broker (KAFKA_BOOTSTRAP_SERVERS) alone")
        _prepare(settings, bootstrap, database_url)
        actions = {Component.BROKER: broker_action, Component.POSTGRES: postgres_action}
        return StackUp(state, actions, tuple(notices), bootstrap, database_url)


def _ensure_postgres(
    settings: Settings, state: StackState, notices: list[str]
) -> tuple[StackState, Action]:
    if settings.database_url is not None:
        return state, Action.CONFIGURED
    current = postgres_status(settings, state)
    if current.health == Health.RUNNING:
        return state, Action.KEPT
    pgdata = settings.home / "pgdata"
    if current.health == Health.DEAD:
        notices.append(f"PostgreSQL had stopped; started it again on its data in {pgdata}")
    handle = start_postgres(pgdata)  # keeps the data directory; waits out crash recovery
    database_url = with_database(handle.url, SANDBOX_DATABASE)
    state = replace(state, database_url=database_url, postgres_pid=handle.pid, pgdata=str(pgdata))
    return state, Action.STARTED if current.health == Health.NOT_STARTED else Action.RESTARTED


def _ensure_broker(
    settings: Settings, state: StackState, reset: bool, notices: list[str]
) -> tuple[StackState, Action]:
    if settings.kafka_bootstrap_servers is not None:
        return state, Action.CONFIGURED
    current = broker_status(settings, state)
    if current.health == Health.RUNNING and not reset:
        return state, Action.KEPT
    if current.health == Health.NOT_ANSWERING and not reset:
        raise StackError(
            f"the broker (pid {current.pid}) runs but did not answer at {current.address}: it "
            f"may be busy (see {current.log}); try again, or stop it with `roamclear dev down` "
            "(the events it holds are then lost)"
        )
    if reset and current.pid is not None and current.health != Health.DEAD:
        stop_broker(current.pid)  # asked for: --reset empties the sandbox
    broker = start_broker(settings.home / "broker.log")
    state = replace(state, bootstrap_servers=broker.bootstrap_servers, broker_pid=broker.pid)
    if reset:
        return state, Action.RESET
    if current.health == Health.DEAD:
        notices.append(
            f"the broker had stopped; started a new one at {broker.bootstrap_servers}. The "
            "events the old one held are gone (it keeps them in memory only): restart every "
            "worker and client, with the new exports"
        )
        return state, Action.RESTARTED
    return state, Action.STARTED


def _ensure_sandbox_database(database_url: str, reset: bool) -> bool:
    """Create the sandbox database if missing (drop it first on --reset); True if created."""
    server_url = with_database(database_url, "postgres")
    with psycopg.connect(server_url, autocommit=True) as admin:
        if reset:
            admin.execute(f'DROP DATABASE IF EXISTS "{SANDBOX_DATABASE}" WITH (FORCE)')
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (SANDBOX_DATABASE,)
        ).fetchone()
        if exists is None:
            admin.execute(f'CREATE DATABASE "{SANDBOX_DATABASE}"')
    return exists is None


def _prepare(settings: Settings, bootstrap_servers: str, database_url: str) -> None:
    try:
        apply_migrations(database_url)
    except psycopg.OperationalError as exc:
        raise StackError(f"cannot reach PostgreSQL at {redacted(database_url)}: {exc}") from exc
    try:
        create_topics(bootstrap_servers, topic_specs(settings.topic_prefix))
    except BrokerUnavailable as exc:
        raise StackError(str(exc)) from exc


def down(settings: Settings) -> StackState | None:
    """Stop what `dev up` started; returns what was stopped (None: nothing was running).
    A pid that now belongs to another process is left alone."""
    with _locked(settings):
        state = read_state(settings)
        if state is None:
            return None
        port = state.broker_port
        if state.broker_pid is not None and port and is_broker_process(state.broker_pid, port):
            stop_broker(state.broker_pid)
        if state.pgdata is not None:
            stop_postgres(Path(state.pgdata))
        _state_path(settings).unlink()
        return state


def resolve(settings: Settings, notify: Callable[[str], None] | None = None) -> Settings:
    """Settings with both servers named: configured ones, else the dev stack (started, or
    its dead parts restarted, if needed). `notify` gets what the user should know."""
    if settings.kafka_bootstrap_servers and settings.database_url:
        return settings
    stack = up(settings)
    for notice in stack.notices:
        (notify or _to_stderr)(notice)
    return settings.with_servers(stack.bootstrap_servers, stack.database_url)


def _to_stderr(notice: str) -> None:
    sys.stderr.write(f"warning: {notice}\n")
