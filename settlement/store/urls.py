"""PostgreSQL connection URLs: swapping the database name of any URL form we use, and
hiding the password before a URL is shown or stored.

    >>> redacted("postgresql://clearing:s3cret@db.example:5432/roamclear")
    'postgresql://clearing:***@db.example:5432/roamclear'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# `password=…` in a key/value connection string or in a URL's query (libpq accepts both)
_PASSWORD_PARAMETER = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


def with_database(database_url: str, dbname: str) -> str:
    """The same server, another database (works for TCP and unix-socket `?host=` URLs)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + dbname))


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/") or "postgres"


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
