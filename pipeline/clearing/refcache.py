"""The agent's cache of reference data, reloaded from PostgreSQL when it changes.

PostgreSQL is the source of truth: before each batch the agent asks for a cheap fingerprint
of the reference tables and reloads the snapshot when it moved, so a tariff published a
moment ago is seen by the very next batch (no reliance on faust table recovery).
"""

from __future__ import annotations

import psycopg

from settlement.store.db import Row
from settlement.store.reference_store import (
    FINGERPRINT_QUERY,
    SNAPSHOT_QUERIES,
    ReferenceSnapshot,
    build_snapshot,
)


class ReferenceCache:
    def __init__(self) -> None:
        self._fingerprint: str | None = None
        self._snapshot = ReferenceSnapshot()
        self.reloads = 0

    @property
    def view(self) -> ReferenceSnapshot:
        return self._snapshot

    async def refresh(self, conn: psycopg.AsyncConnection[Row]) -> ReferenceSnapshot:
        row = await (await conn.execute(FINGERPRINT_QUERY)).fetchone()
        assert row is not None
        if row["fingerprint"] != self._fingerprint:
            rows = {
                name: await (await conn.execute(query)).fetchall()
                for name, query in SNAPSHOT_QUERIES.items()
            }
            self._snapshot = build_snapshot(rows)
            self._fingerprint = row["fingerprint"]
            self.reloads += 1
        return self._snapshot
