"""Finance API bearer tokens: created once, stored as sha256, checked per request.

A token is 32 random bytes (``secrets.token_urlsafe(32)``) shown once at creation. Only its
sha256 is stored: with 256 bits of randomness there is no dictionary to attack, so a slow
password hash (bcrypt, argon2) would add latency to every request and no safety; a leaked
table does not reveal usable tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

import psycopg

from settlement.store.db import Row

TOKEN_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for: finance (every statement) or one partner (its own)."""

    scope: str  # FINANCE or PARTNER
    partner: str | None

    def may_read(self, partner: str) -> bool:
        return self.scope == "FINANCE" or self.partner == partner


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: psycopg.Connection[Row], partner: str | None, label: str = "") -> str:
    """A new token (finance when ``partner`` is None); returned once, stored hashed."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    conn.execute(
        "INSERT INTO finance_api_token (token_hash, scope, partner, label) VALUES (%s, %s, %s, %s)",
        (token_hash(token), "FINANCE" if partner is None else "PARTNER", partner, label),
    )
    return token


def principal_of(conn: psycopg.Connection[Row], token: str) -> Principal | None:
    row = conn.execute(
        "SELECT scope, partner FROM finance_api_token WHERE token_hash = %s", (token_hash(token),)
    ).fetchone()
    return None if row is None else Principal(row["scope"], row["partner"])
