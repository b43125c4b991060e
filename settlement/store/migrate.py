"""Schema migrations: plain SQL files in settlement/store/migrations, applied by yoyo.

yoyo-migrations was chosen because our schema is plain SQL (constraints and triggers that
carry the ledger's invariants belong in SQL, reviewed as SQL), it records what it applied in
the database itself, takes a lock so two processes migrating at once are safe, and supports
rollbacks per file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

from settlement.store.db import Row

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _yoyo_url(database_url: str) -> str:
    # yoyo picks its driver from the URL scheme; psycopg 3 is "postgresql+psycopg".
    for scheme in ("postgresql://", "postgres://"):
        if database_url.startswith(scheme):
            return "postgresql+psycopg://" + database_url[len(scheme) :]
    return database_url


def apply_migrations(database_url: str) -> list[str]:
    """Apply what is pending; returns the ids applied (empty when up to date)."""
    backend = get_backend(_yoyo_url(database_url))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [migration.id for migration in pending]
    finally:
        backend.connection.close()  # a database with a session open cannot be a template


def pending_migrations(database_url: str) -> list[str]:
    backend = get_backend(_yoyo_url(database_url))
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
    finally:
        backend.connection.close()


@cache
def packaged_ids() -> frozenset[str]:
    """The ids of the migrations this package holds (post-apply is not one: it runs after
    every apply and is not recorded)."""
    return frozenset(m.id for m in read_migrations(str(MIGRATIONS_DIR)))


def unapplied(conn: psycopg.Connection[Row]) -> list[str]:
    """The packaged migrations the database has not applied (all of them on a database yoyo
    never touched), sorted: a process whose schema lags its code must not take traffic."""
    found = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL AS found").fetchone()
    applied: set[str] = set()
    if found is not None and found["found"]:
        rows = conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
        applied = {row["migration_id"] for row in rows}
    return sorted(packaged_ids() - applied)
