"""PostgreSQL connection URLs: swapping the database name or the user of any URL form we use."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit


def with_database(database_url: str, dbname: str) -> str:
    """The same server, another database (works for TCP and unix-socket `?host=` URLs)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + dbname))


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/") or "postgres"


def with_user(database_url: str, user: str) -> str:
    """The same server and database as another user, without a password (it comes from the
    server's trust or peer rules, ~/.pgpass or PGPASSFILE, never from another user's URL)."""
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{host}"))


def user_name(database_url: str) -> str | None:
    user = urlsplit(database_url).username
    return None if user is None else unquote(user)


def masked(database_url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for output and logs."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))
