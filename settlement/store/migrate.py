"""Schema migrations: plain SQL files in settlement/store/migrations, applied by yoyo.

yoyo-migrations was chosen because our schema is plain SQL (constraints and triggers that
carry the ledger's invariants belong in SQL, reviewed as SQL), it records what it applied in
the database itself, takes a lock so two processes migrating at once are safe, and supports
rollbacks per file.
"""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

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
