"""OCPI credentials tokens the hub issues to partners (migration 0010), stored as sha256.

    token = issue(conn, PartyRef.parse("NL*TNM"), TokenKind.A)   # shown once
    found = lookup(conn, token_hash(token))                       # per request
    revoke(conn, token_hash(token), "registered")                 # token A after the handshake

A token is 32 random bytes in base64url (43 printable ASCII characters: OCPI's
`string(64)`, U+0021 to U+007E). As with the finance API's tokens, 256 random bits leave no
dictionary to attack, so a plain sha256 is stored; a leaked table reveals no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

import psycopg

from schemas.hub.party import PartyRef
from settlement.store.db import Row

TOKEN_BYTES: Final = 32


class TokenKind(StrEnum):
    """What a token opens."""

    A = "A"  # registration only: versions and credentials (handed out of band)
    C = "C"  # every module (issued by the credentials handshake)


class TokenRefused(Exception):
    """The token cannot be issued or revoked: an unregistered partner, an unknown or already
    revoked token. The message says which."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as looked up: whose, which kind, and whether it is still valid."""

    token_hash: str
    partner: PartyRef
    kind: TokenKind
    raw_allowed: bool
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    conn: psycopg.Connection[Row],
    partner: PartyRef,
    kind: TokenKind,
    raw_allowed: bool = False,
    label: str = "",
) -> str:
    """A new token for a registered partner; returned once, stored hashed."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO ocpi_token (token_hash, partner, kind, raw_allowed, label)"
                " VALUES (%s, %s, %s, %s, %s)",
                (token_hash(token), str(partner), kind.value, raw_allowed, label),
            )
    except psycopg.errors.ForeignKeyViolation as exc:
        raise TokenRefused(
            f"{partner} is not a registered partner (roamclear partners add)"
        ) from exc
    return token


_LOOKUP = """
SELECT t.token_hash, t.partner, t.kind, t.raw_allowed, t.created_at, r.revoked_at
  FROM ocpi_token t LEFT JOIN ocpi_token_revocation r USING (token_hash)
 WHERE t.token_hash = %s
"""


def lookup(conn: psycopg.Connection[Row], hashed: str) -> IssuedToken | None:
    row = conn.execute(_LOOKUP, (hashed,)).fetchone()
    if row is None:
        return None
    return IssuedToken(
        row["token_hash"],
        PartyRef.parse(row["partner"]),
        TokenKind(row["kind"]),
        row["raw_allowed"],
        row["created_at"],
        row["revoked_at"],
    )


def revoke(conn: psycopg.Connection[Row], hashed: str, reason: str = "") -> None:
    """The token stops working now (a revocation row; the token row is kept)."""
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO ocpi_token_revocation (token_hash, reason) VALUES (%s, %s)",
                (hashed, reason[:500]),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise TokenRefused("the token is revoked already") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise TokenRefused("no such token") from exc
