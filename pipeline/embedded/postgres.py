"""The embedded PostgreSQL: real PostgreSQL 16 binaries from the pgserver wheel.

pgserver listens on a unix socket inside the data directory (no TCP port at all), so the
connection string looks like `postgresql://postgres:@/postgres?host=/path/to/pgdata`.
As root, pgserver runs the server as a system user `pgserver` that it creates.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or stopped; see its log under pgdata/log."""


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


def start_postgres(pgdata: Path) -> PostgresHandle:
    """Start (or find running) PostgreSQL on `pgdata`; it keeps running after we return."""
    pgserver = _pgserver()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    pid = server.get_pid()
    if pid is None:
        raise EmbeddedPostgresError(f"PostgreSQL did not start on {pgdata}; see {pgdata}/log")
    return PostgresHandle(pid=int(pid), url=str(server.get_uri()), pgdata=pgdata)


def stop_postgres(pgdata: Path) -> None:
    """Fast shutdown; a no-op when nothing runs there."""
    if not (pgdata / "postmaster.pid").exists():
        return
    pg_ctl = _pgserver()._commands.pg_ctl
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
