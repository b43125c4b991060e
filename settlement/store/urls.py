"""PostgreSQL connection URLs: swapping the database name or the user of any URL form we
use, and hiding the password before a URL is shown or stored.

    >>> redacted("postgresql://clearing:s3cret@db.example:5432/roamclear")
    'postgresql://clearing:***@db.example:5432/roamclear'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"
# `password=…` in a key/value connection string or in a URL's query (libpq accepts both)
_PASSWORD_PARAMETER = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


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
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in {"user", "password"}]
    return urlunsplit(
        parts._replace(netloc=f"{quote(user, safe='')}@{host}", query=urlencode(query, safe="/"))
    )


def redacted(database_url: str) -> str:
    """`database_url` with any password replaced by ***, for output and files."""
    text = _PASSWORD_PARAMETER.sub(lambda match: f"{match.group(1)}{MASK}", database_url)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    user, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in user:
        return text
    name, _, password = user.partition(":")
    if not password:
        return text  # `postgres:@` names no password
    return urlunsplit(parts._replace(netloc=f"{name}:{MASK}@{host}"))
