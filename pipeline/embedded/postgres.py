"""The embedded PostgreSQL: real PostgreSQL 16 binaries from the pgserver wheel.

pgserver listens on a unix socket inside the data directory (no TCP port at all), so the
connection string looks like `postgresql://postgres:@/postgres?host=/path/to/pgdata`.
As root, pgserver runs the server as a system user `pgserver` that it creates.

Starting is safe on an existing data directory: initdb runs only for an empty one, and a
server that crashed is started again on its data (PostgreSQL replays its WAL). Whether a
server runs is read from PostgreSQL's own lock file (`postmaster.pid`) and a connection,
never from a pid someone stored.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pipeline.embedded import EmbeddedError
from pipeline.embedded.processes import is_alive, process_arguments

START_WAIT_S_MAX = 30.0  # a start, including crash recovery, until the server answers
START_RETRY_S_MAX = 5.0  # retrying a failed start while a crashed server's children exit
ANSWER_WAIT_S_MAX = 5.0


class EmbeddedPostgresError(EmbeddedError):
    """The embedded PostgreSQL could not be started or stopped; its log (pgdata/log) says why."""


@dataclass(frozen=True, slots=True)
class PostgresHandle:
    pid: int
    url: str
    pgdata: Path


def _pgserver() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); pgserver only uses
    # that directory for a lock file, so the fallback it picks is fine.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL needs the pgserver package: `make setup` installs it, "
            "or set DATABASE_URL to a running PostgreSQL"
        ) from exc
    return pgserver


class _PgCtlErrors(logging.Handler):
    """pgserver logs a failed pg_ctl (with the whole server log) instead of raising it: keep
    pg_ctl's own complaint for our error, and keep the dump off the user's terminal (without
    a handler Python would print it)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.complaints: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"\nstderr:\n(.*?)\n---", record.getMessage(), re.DOTALL)
        if found and found.group(1).strip():
            self.complaints.append(found.group(1).strip())

    @contextmanager
    def installed(self) -> Iterator[_PgCtlErrors]:
        logger = logging.getLogger("pgserver")
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)

    def because(self) -> str:
        return f": {self.complaints[-1]}" if self.complaints else ""


def log_path(pgdata: Path) -> Path:
    return pgdata / "log"


def postmaster_pid(pgdata: Path) -> int | None:
    """The server's pid from PostgreSQL's lock file, if that process is alive."""
    try:
        first_line = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (OSError, ValueError):
        return None
    return pid if is_alive(pid) else None


def postgres_answers(url: str, timeout_s: float = ANSWER_WAIT_S_MAX) -> bool:
    """Whether the server at `url` accepts a connection and a query within `timeout_s`."""
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=max(2, round(timeout_s))
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def start_postgres(pgdata: Path) -> PostgresHandle:
    """Start PostgreSQL on `pgdata` (or find it running) and return once it accepts
    connections; it keeps running after we return."""
    pgserver = _pgserver()
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata.resolve()
    deadline = time.monotonic() + START_WAIT_S_MAX
    _wait_until_reaped(pgdata, deadline)
    retry_until = time.monotonic() + START_RETRY_S_MAX
    with _PgCtlErrors().installed() as errors:
        while True:
            try:
                # Not get_server(): it hands out a handle cached in this process, with the
                # pid of a server that may have died since.
                server = pgserver.PostgresServer(pgdata, cleanup_mode=None)
                break
            # pgserver fails with CalledProcessError or TimeoutExpired from pg_ctl, OSError,
            # or an assert on a lock file it cannot parse: whatever it is, no server started.
            except Exception as exc:
                # After a crash the old server's children may hold its shared memory a while.
                if time.monotonic() > retry_until:
                    raise EmbeddedPostgresError(
                        f"PostgreSQL did not start on {pgdata}{errors.because()}; "
                        f"see {log_path(pgdata)}"
                    ) from exc
                time.sleep(0.5)
    pid = server.get_pid()
    url = str(server.get_uri())
    if pid is not None and not _is_postgres(pid):
        raise EmbeddedPostgresError(
            f"{pgdata}/postmaster.pid names pid {pid}, which is not PostgreSQL: a crashed "
            "server's lock file whose pid another process now has. If no PostgreSQL runs on "
            f"{pgdata}, remove that file and try again"
        )
    while pid is None or not postgres_answers(url):
        if pid is None or not is_alive(pid) or time.monotonic() > deadline:
            raise EmbeddedPostgresError(
                f"PostgreSQL on {pgdata} (pid {pid}) does not accept connections; "
                f"see {log_path(pgdata)}"
            )
        time.sleep(0.2)  # crash recovery replays the WAL before the server accepts anyone
    return PostgresHandle(pid=int(pid), url=url, pgdata=pgdata)


def _wait_until_reaped(pgdata: Path, deadline: float) -> None:
    """A killed server lingers as a zombie until its parent reaps it; pgserver would take it
    for a running server and hand back its dead pid."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    while not is_alive(pid) and _exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _is_postgres(pid: int) -> bool:
    arguments = process_arguments(pid)
    if not arguments:  # the system does not say, or it has just gone
        return True
    return Path(arguments[0]).name in ("postgres", "postmaster")


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_postgres(pgdata: Path) -> None:
    """Fast shutdown; a no-op when no server runs there (also when a crashed server left
    its lock file behind)."""
    if postmaster_pid(pgdata) is None:
        return
    pg_ctl = _pgserver()._commands.pg_ctl
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user
    with _PgCtlErrors().installed() as errors:
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
        except subprocess.CalledProcessError as exc:
            if postmaster_pid(pgdata) is None:
                return  # it went meanwhile
            raise EmbeddedPostgresError(
                f"could not stop PostgreSQL on {pgdata}{errors.because()}; see {log_path(pgdata)}"
            ) from exc
