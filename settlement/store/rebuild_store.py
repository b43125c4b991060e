"""What `roamclear rebuild` reads and writes besides the clearing path itself: the target's
emptiness, the partner registry it copies from the source, the archive as a fallback source.

Partners and their keys are registered by operators (`roamclear partners add`, `partners
keys add|revoke`) straight into PostgreSQL: no topic carries them, so a rebuild copies them
from the source database, every version and revocation as stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from settlement.store.clearing_store import SubmittedRecord
from settlement.store.db import Row

FETCH_ROWS = 1_000  # archived records per round trip of the archive cursor
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class TargetNotEmpty(Exception):
    """The rebuild's target already holds data: a rebuild starts from an empty database
    (create one, or drop and create it again) so that what it proves is its own work."""


# What a fresh, migrated database holds none of.
_HOLDINGS = """
SELECT (SELECT count(*) FROM raw_event) AS raw_event,
       (SELECT count(*) FROM ledger_transaction) AS ledger_transaction,
       (SELECT count(*) FROM partner_version) AS partner_version,
       (SELECT count(*) FROM tariff_version) AS tariff_version,
       (SELECT count(*) FROM agreement_version) AS agreement_version
"""
_REGISTRY = (
    ("partner_version", ("party_ref", "version", "role", "name", "created_at")),
    ("partner_key", ("key_id", "partner", "algorithm", "public_key", "label", "created_at")),
    ("partner_key_revocation", ("key_id", "revoked_at", "reason", "recorded_at")),
)
_ARCHIVED = """
SELECT topic, partition, "offset", broker_timestamp, key, value, headers
  FROM raw_event WHERE topic = %s AND partition = %s
 ORDER BY "offset"
"""
_PARTITIONS = "SELECT DISTINCT partition FROM raw_event WHERE topic = %s ORDER BY partition"


def assert_empty(conn: psycopg.Connection[Row]) -> None:
    """Raise TargetNotEmpty naming what the database holds, if anything."""
    row = conn.execute(_HOLDINGS).fetchone()
    assert row is not None
    held = {table: count for table, count in row.items() if count}
    if held:
        listed = ", ".join(f"{count:,} rows in {table}" for table, count in held.items())
        raise TargetNotEmpty(f"the target database is not empty ({listed})")


def copy_registry(
    source: psycopg.Connection[Row], target: psycopg.Connection[Row]
) -> dict[str, int]:
    """Copy every partner version, partner key and key revocation (in the target's current
    transaction); returns the rows copied per table."""
    copied: dict[str, int] = {}
    for table, columns in _REGISTRY:
        names = ", ".join(columns)
        rows = source.execute(f"SELECT {names} FROM {table} ORDER BY 1, 2").fetchall()
        marks = ", ".join(["%s"] * len(columns))
        with target.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [tuple(row[c] for c in columns) for row in rows],
            )
        copied[table] = len(rows)
    return copied


def _header_name(name: Any) -> str:
    """Inverse of clearing_store's: a name that was not UTF-8 is kept as {"hex": bytes}."""
    if isinstance(name, dict):
        return bytes.fromhex(name["hex"]).decode("utf-8", "surrogateescape")
    return str(name)


def archived_partitions(conn: psycopg.Connection[Row], topic: str) -> list[int]:
    return [row["partition"] for row in conn.execute(_PARTITIONS, (topic,))]


def archived_records(
    conn: psycopg.Connection[Row], topic: str, partition: int
) -> Iterator[SubmittedRecord]:
    """Every archived record of one partition of `topic`, in offset order, as the clearing
    agent received it (except why a record was unreadable: the archive keeps its bytes, not
    the client's reason). Streams through a server-side cursor of its own, so one
    connection can read every partition at once."""
    with conn.cursor(name=f"rebuild_archive_{partition}") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(_ARCHIVED, (topic, partition))
        for row in cursor:
            moment = row["broker_timestamp"]
            headers = row["headers"]
            if isinstance(headers, str):
                headers = json.loads(headers)
            yield SubmittedRecord(
                topic=row["topic"],
                partition=row["partition"],
                offset=row["offset"],
                timestamp_ms=None if moment is None else (moment - _EPOCH) // _MILLISECOND,
                key=None if row["key"] is None else bytes(row["key"]),
                value=None if row["value"] is None else bytes(row["value"]),
                headers=tuple(
                    (_header_name(name), None if value is None else bytes.fromhex(value))
                    for name, value in headers
                ),
            )


def archived_count(conn: psycopg.Connection[Row], topic: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM raw_event WHERE topic = %s", (topic,)).fetchone()
    assert row is not None
    return int(row["n"])
