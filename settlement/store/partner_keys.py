"""Partners' public keys in PostgreSQL: register, list, revoke (settlement.clearing.proof).

A key id is `pk-` and 12 random hex digits. Keys and revocations are append-only rows
(migration 0006): a key is never changed or reinstated, a rotation registers a new one.

    key_id = add_key(conn, PartyRef.parse("NL*TNM"), public_key_raw, label="prod 2026")
    revoke_key(conn, key_id, at=None, reason="rotated")     # refused from now on
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from schemas.hub.party import PartyRef
from settlement.store.db import Row

KEY_ID_PREFIX: Final = "pk-"
PUBLIC_KEY_BYTES: Final = 32


class PartnerKeyError(Exception):
    """A key operation the books refuse: an unregistered partner, a malformed or duplicate
    public key, an unknown or already revoked key id. The message says which."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    partner: str
    algorithm: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    fingerprint: str  # sha256 of the raw public key, first 16 hex digits

    def json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "partner": self.partner,
            "algorithm": self.algorithm,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "revocation_reason": self.revocation_reason,
            "fingerprint": self.fingerprint,
        }


def add_key(
    conn: psycopg.Connection[Row], partner: PartyRef, public_key: bytes, label: str = ""
) -> str:
    """Register an Ed25519 public key (raw 32 bytes) for a registered partner; its key id."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise PartnerKeyError(
            f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, this one {len(public_key)}"
        )
    if (
        conn.execute("SELECT 1 FROM partner WHERE party_ref = %s", (str(partner),)).fetchone()
        is None
    ):
        raise PartnerKeyError(f"{partner} is not a registered partner (roamclear partners add)")
    key_id = KEY_ID_PREFIX + secrets.token_hex(6)
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO partner_key (key_id, partner, algorithm, public_key, label) "
                "VALUES (%s, %s, 'ed25519', %s, %s)",
                (key_id, str(partner), public_key, label),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise PartnerKeyError("this public key is registered already") from exc
    return key_id


def revoke_key(
    conn: psycopg.Connection[Row], key_id: str, at: datetime | None = None, reason: str = ""
) -> datetime:
    """Refuse the key for records decided from `at` on (default: now); returns that moment."""
    row = conn.execute(
        "SELECT k.key_id, r.revoked_at FROM partner_key k "
        "LEFT JOIN partner_key_revocation r USING (key_id) WHERE k.key_id = %s",
        (key_id,),
    ).fetchone()
    if row is None:
        raise PartnerKeyError(f"no key {key_id} (roamclear partners keys list)")
    if row["revoked_at"] is not None:
        raise PartnerKeyError(f"key {key_id} is revoked already, at {row['revoked_at']}")
    revoked = conn.execute(
        "INSERT INTO partner_key_revocation (key_id, revoked_at, reason) "
        "VALUES (%s, coalesce(%s, now()), %s) RETURNING revoked_at",
        (key_id, at, reason),
    ).fetchone()
    assert revoked is not None
    return revoked["revoked_at"]  # type: ignore[no-any-return]


def list_keys(conn: psycopg.Connection[Row], partner: PartyRef | None = None) -> list[StoredKey]:
    rows = conn.execute(
        "SELECT k.key_id, k.partner, k.algorithm, k.label, k.created_at, r.revoked_at, "
        "r.reason AS revocation_reason, "
        "left(encode(sha256(k.public_key), 'hex'), 16) AS fingerprint "
        "FROM partner_key k LEFT JOIN partner_key_revocation r USING (key_id) "
        "WHERE %(partner)s::text IS NULL OR k.partner = %(partner)s "
        "ORDER BY k.partner, k.created_at, k.key_id",
        {"partner": None if partner is None else str(partner)},
    ).fetchall()
    return [StoredKey(**row) for row in rows]
