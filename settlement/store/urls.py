"""PostgreSQL connection URLs: swapping the database name of any URL form we use."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def with_database(database_url: str, dbname: str) -> str:
    """The same server, another database (works for TCP and unix-socket `?host=` URLs)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + dbname))


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/") or "postgres"
