"""The session agent's writes: session.events records → session_version, in one transaction
per batch, idempotent under redelivery (migration 0013).

1. archive the records in raw_event (a redelivered record finds its position taken and is
   skipped, exactly as in clearing);
2. decode each new one (settlement.sessions.decode) against the hub's keys and the partner
   keys the batch names;
3. insert the versions (an event produced twice is one version: `ON CONFLICT (event_id) DO
   NOTHING`) and the rejections (table rejection, reason and stage as clearing's; the topic
   in raw_event tells them apart).

The caller commits nothing itself: it runs this inside `conn.transaction()`, then acks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from schemas.hub.party import PartyRef
from settlement.clearing.batch import unreadable_rejection
from settlement.clearing.outcome import Rejected
from settlement.clearing.proof import KEY_HEADER, PARTNER_KEY_PREFIX, PartnerKey
from settlement.sessions.decode import SessionVersion, decode_session_event
from settlement.store import clearing_store as store
from settlement.store.clearing_rows import rejection_row
from settlement.store.clearing_store import SubmittedRecord
from settlement.store.db import Row, jsonb_exact

VERSION_COLUMNS = (
    "archive_id",
    "event_id",
    "session_key",
    "cpo",
    "emsp",
    "session_id",
    "status",
    "start_date_time",
    "end_date_time",
    "kwh",
    "currency",
    "last_updated",
    "occurred_at",
    "submitter",
    "proof",
    "body",
)
_INSERT_VERSIONS = f"""
INSERT INTO session_version ({", ".join(VERSION_COLUMNS)})
SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::text[], %s::timestamptz[], %s::timestamptz[], %s::numeric[],
                     %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[], %s::text[],
                     %s::jsonb[])
ON CONFLICT (event_id) DO NOTHING
RETURNING archive_id
"""
_PARTNER_KEYS = """
SELECT k.key_id, k.partner, k.public_key, r.revoked_at FROM partner_key k
  LEFT JOIN partner_key_revocation r USING (key_id) WHERE k.key_id = ANY(%s)
"""


@dataclass(slots=True)
class SessionBatchResult:
    received: int = 0
    skipped: int = 0  # archived before: a redelivery
    versions: int = 0
    duplicates: int = 0  # an event already stored from another record
    rejected: dict[str, int] = field(default_factory=dict)


class _Keys:
    """The hub's record-proof keys and the partner keys this batch's records name."""

    def __init__(self, hub: Mapping[str, bytes], partners: Mapping[str, PartnerKey]) -> None:
        self.hub, self.partners = hub, partners

    def hub_key(self, key_id: str) -> bytes | None:
        return self.hub.get(key_id)

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return self.partners.get(key_id)


async def _partner_keys(
    conn: psycopg.AsyncConnection[Row], records: Sequence[SubmittedRecord]
) -> dict[str, PartnerKey]:
    named = {
        value.decode("ascii", "replace")
        for record in records
        for name, value in record.headers
        if name == KEY_HEADER and value and value.startswith(PARTNER_KEY_PREFIX.encode())
    }
    if not named:
        return {}
    rows = await (await conn.execute(_PARTNER_KEYS, (sorted(named),))).fetchall()
    return {
        row["key_id"]: PartnerKey(
            row["key_id"],
            PartyRef.parse(row["partner"]),
            bytes(row["public_key"]),
            row["revoked_at"],
        )
        for row in rows
    }


def _decide(record: SubmittedRecord, keys: _Keys, now: datetime) -> SessionVersion | Rejected:
    if record.unreadable is not None:
        return unreadable_rejection(record)
    return decode_session_event(record.topic, record.value, record.headers, keys, now)


def _version_columns(rows: Sequence[tuple[int, SessionVersion]]) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in VERSION_COLUMNS]
    for archive_id, version in rows:
        session = version.session
        values = (
            archive_id,
            UUID(version.event_id),
            version.key,
            str(version.cpo),
            str(version.emsp),
            session.id,
            session.status.value,
            session.start_date_time,
            session.end_date_time,
            session.kwh,
            session.currency,
            session.last_updated,
            version.occurred_at,
            str(version.submitter),
            version.proof,
            jsonb_exact(version.document),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


async def record_sessions(
    conn: psycopg.AsyncConnection[Row],
    records: Sequence[SubmittedRecord],
    hub_keys: Mapping[str, bytes],
    now: datetime,
) -> SessionBatchResult:
    """Archive, decode and store one batch (inside the caller's transaction)."""
    result = SessionBatchResult(received=len(records))
    archived = await store.archive(conn, records)
    fresh = [
        (record, archived[record.position]) for record in records if record.position in archived
    ]
    result.skipped = len(records) - len(fresh)
    keys = _Keys(hub_keys, await _partner_keys(conn, [record for record, _ in fresh]))
    versions: list[tuple[int, SessionVersion]] = []
    rejected: list[tuple[int, SubmittedRecord, Rejected]] = []
    for record, archive_id in fresh:
        decided = _decide(record, keys, now)
        if isinstance(decided, Rejected):
            rejected.append((archive_id, record, decided))
        else:
            versions.append((archive_id, decided))
    if versions:
        inserted = await (
            await conn.execute(_INSERT_VERSIONS, _version_columns(versions))
        ).fetchall()
        result.versions = len(inserted)
        result.duplicates = len(versions) - len(inserted)
    ids = await store.next_ids(conn, "rejection_rejection_id_seq", len(rejected))
    await store.copy_rows(
        conn,
        "rejection",
        store.REJECTION_COLUMNS,
        (
            rejection_row(rejection_id, archive_id, outcome, record.value)
            for rejection_id, (archive_id, record, outcome) in zip(ids, rejected, strict=True)
        ),
    )
    for _, _, outcome in rejected:
        reason = str(outcome.reason)
        result.rejected[reason] = result.rejected.get(reason, 0) + 1
    return result
