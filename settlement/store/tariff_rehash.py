"""Migration 0015: every stored tariff version under the one tariff hash.

Until 0015, `tariff_version.content_hash` was sha256 of the tariff as OCPI JSON (model
field order, numbers as sent), while each booking recorded the rating's hash,
`settlement.rating.compile.tariff_content_hash` (sorted keys, nulls dropped): for the same
tariff the two differ, so no booking could be traced to its version by hash (invariant 7).
The rating's hash is the one kept, because transaction ids, bookings and events already
carry it and must not change.

The hash is defined in Python, not SQL (jsonb prints keys in its own order and spacing, and
the hash covers defaults the stored body leaves out), so the migration computes it here: each
stored body is read back exactly as clearing reads it (`Tariff.model_validate` of the jsonb
with exact Decimals) and hashed with the function the store and rating use. The table is
append-only; only this migration, inside its own transaction, lifts its row trigger to
rewrite the column, and puts it back before committing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from schemas.base import loads_exact
from schemas.ocpi.tariff import Tariff
from settlement.rating.compile import tariff_content_hash

_ROWS = "SELECT tariff_key, last_updated, content_hash, body::text FROM tariff_version"
_REHASH = """
UPDATE tariff_version SET content_hash = %s
 WHERE tariff_key = %s AND last_updated = %s AND content_hash = %s
"""
_TRIGGER = "tariff_version_append_only"


class TariffHashCollision(Exception):
    """Two stored versions of one tariff with one last_updated would get the same hash."""


def rehash_tariff_versions(conn: Any) -> int:
    """Give every `tariff_version` row the hash rating records; returns how many changed.
    `conn` is the migration's DB-API connection (psycopg 3, tuple rows), in a transaction."""
    with conn.cursor() as cursor:
        cursor.execute(_ROWS)
        rows = cursor.fetchall()
        hashed = [
            (key, last_updated, old, tariff_content_hash(Tariff.model_validate(loads_exact(body))))
            for key, last_updated, old, body in rows
        ]
        # `store_tariff` refuses a second content under one (key, last_updated), so the old
        # hash never told two such rows apart where the new one cannot: say so if it did.
        clashes = Counter((key, last_updated, new) for key, last_updated, _, new in hashed)
        doubled = sorted(str(version[0]) for version, count in clashes.items() if count > 1)
        if doubled:
            raise TariffHashCollision(f"tariff versions stored twice under one hash: {doubled}")
        changed = [(new, key, at, old) for key, at, old, new in hashed if new != old]
        if changed:
            cursor.execute(f"ALTER TABLE tariff_version DISABLE TRIGGER {_TRIGGER}")
            cursor.executemany(_REHASH, changed)
            cursor.execute(f"ALTER TABLE tariff_version ENABLE TRIGGER {_TRIGGER}")
        cursor.execute(
            "COMMENT ON COLUMN tariff_version.content_hash IS 'settlement.rating.compile."
            "tariff_content_hash: the hash each booking records (rating jsonb, tariff)'"
        )
    return len(changed)
