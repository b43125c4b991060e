"""Finance API bearer tokens: created once, stored as sha256, checked per request, listed,
revoked, optionally expiring.

A token is 32 random bytes (``secrets.token_urlsafe(32)``) shown once at creation. Only its
sha256 is stored: with 256 bits of randomness there is no dictionary to attack, so a slow
password hash (bcrypt, argon2) would add latency to every request and no safety; a leaked
table does not reveal usable tokens.

A token's public id is the first ``TOKEN_ID_CHARS`` hex digits of that hash: enough to name
it in ``token list`` and ``token revoke``, useless to call the API with. A token ends by
expiring (``expires_at``) or by a revocation row (migration 0008: nothing is updated or
deleted); either way the API answers 401. A partner token is only made for a partner
registered in ``partner``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import psycopg

from settlement.store.db import Row

TOKEN_BYTES: Final = 32
TOKEN_ID_CHARS: Final = 12
TOKEN_ID_CHARS_MIN: Final = 8
"""``token revoke`` takes a prefix of the hash at least this long (and naming one token)."""
LABEL_CHARS_MAX: Final = 200
REASON_CHARS_MAX: Final = 500


class TokenRefused(ValueError):
    """A token cannot be created or revoked as asked: the message says why (an unregistered
    partner, an expiry in the past, an unknown or ambiguous id, a token already revoked)."""


class TokenStatus(StrEnum):
    ACTIVE = "ACTIVE"  # the API accepts it
    EXPIRED = "EXPIRED"  # past its expires_at: 401
    REVOKED = "REVOKED"  # a revocation row names it: 401


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for: finance (every statement) or one partner (its own)."""

    scope: str  # FINANCE or PARTNER
    partner: str | None

    def may_read(self, partner: str) -> bool:
        return self.scope == "FINANCE" or self.partner == partner


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One token as ``token list`` shows it: never the token, never the whole hash."""

    token_id: str
    scope: str
    partner: str | None
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: TokenStatus

    def json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "id": self.token_id,
            "scope": self.scope,
            "partner": self.partner,
            "label": self.label,
            "created_at": when(self.created_at),
            "expires_at": when(self.expires_at),
            "revoked_at": when(self.revoked_at),
            "status": self.status.value,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: psycopg.Connection[Row],
    partner: str | None,
    label: str = "",
    expires_at: datetime | None = None,
) -> str:
    """A new token (finance when ``partner`` is None); returned once, stored hashed."""
    if len(label) > LABEL_CHARS_MAX:
        raise TokenRefused(f"the label has {len(label)} characters; at most {LABEL_CHARS_MAX}")
    if partner is not None:
        known = conn.execute("SELECT 1 FROM partner WHERE party_ref = %s", (partner,)).fetchone()
        if known is None:
            raise TokenRefused(
                f"{partner} is not a registered partner (roamclear partners add --id {partner})"
            )
    if expires_at is not None:
        now = conn.execute("SELECT now() AS now").fetchone()
        assert now is not None
        if expires_at <= now["now"]:
            raise TokenRefused(f"the expiry {expires_at.isoformat()} is not in the future")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    conn.execute(
        "INSERT INTO finance_api_token (token_hash, scope, partner, label, expires_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (
            token_hash(token),
            "FINANCE" if partner is None else "PARTNER",
            partner,
            label,
            expires_at,
        ),
    )
    return token


def principal_of(conn: psycopg.Connection[Row], token: str) -> Principal | None:
    """Who the token speaks for; None when it is unknown, expired or revoked."""
    row = conn.execute(
        "SELECT t.scope, t.partner FROM finance_api_token t"
        " WHERE t.token_hash = %s AND (t.expires_at IS NULL OR t.expires_at > now())"
        " AND NOT EXISTS (SELECT 1 FROM finance_api_token_revocation r"
        " WHERE r.token_hash = t.token_hash)",
        (token_hash(token),),
    ).fetchone()
    return None if row is None else Principal(row["scope"], row["partner"])


_LIST = """
SELECT left(t.token_hash, %(id_chars)s) AS token_id, t.scope, t.partner, t.label,
       t.created_at, t.expires_at, r.revoked_at,
       CASE WHEN r.revoked_at IS NOT NULL THEN 'REVOKED'
            WHEN t.expires_at <= now() THEN 'EXPIRED' ELSE 'ACTIVE' END AS status
  FROM finance_api_token t
  LEFT JOIN finance_api_token_revocation r ON r.token_hash = t.token_hash
 WHERE %(hash)s::text IS NULL OR t.token_hash = %(hash)s
 ORDER BY t.created_at, t.token_hash
"""


def list_tokens(conn: psycopg.Connection[Row], full_hash: str | None = None) -> list[TokenInfo]:
    rows = conn.execute(_LIST, {"id_chars": TOKEN_ID_CHARS, "hash": full_hash}).fetchall()
    return [TokenInfo(**{**row, "status": TokenStatus(row["status"])}) for row in rows]


def revoke_token(conn: psycopg.Connection[Row], token_id: str, reason: str = "") -> TokenInfo:
    """Revoke the one token whose hash starts with ``token_id``; returns it as it is now."""
    prefix = token_id.strip().lower()
    if len(prefix) < TOKEN_ID_CHARS_MIN or any(c not in "0123456789abcdef" for c in prefix):
        raise TokenRefused(
            f"a token id is at least {TOKEN_ID_CHARS_MIN} hex digits (roamclear statements "
            "token list)"
        )
    if len(reason) > REASON_CHARS_MAX:
        raise TokenRefused(f"the reason has {len(reason)} characters; at most {REASON_CHARS_MAX}")
    found = conn.execute(
        "SELECT token_hash FROM finance_api_token WHERE token_hash LIKE %s LIMIT 2",
        (prefix + "%",),
    ).fetchall()
    if len(found) != 1:
        raise TokenRefused(
            f"no token has the id {prefix}"
            if not found
            else f"the id {prefix} names more than one token: give more of it"
        )
    full = found[0]["token_hash"]
    inserted = conn.execute(
        "INSERT INTO finance_api_token_revocation (token_hash, reason) VALUES (%s, %s)"
        " ON CONFLICT (token_hash) DO NOTHING RETURNING token_hash",
        (full, reason),
    ).fetchone()
    if inserted is None:
        raise TokenRefused(f"token {prefix} is already revoked")
    [info] = list_tokens(conn, full)
    return info
