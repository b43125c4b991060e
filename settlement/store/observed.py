"""What `roamclear api`'s /metrics reads from PostgreSQL at each scrape: counts that only the
database knows across processes (deliveries by state, the closer's recorded runs, closed
batches). Each is one aggregate over an indexed or small table.

The closer records a run only when it closed something or failed (a close with nothing to
close writes nothing: settlement.store.closing), so these are the runs that changed or
failed to change the books; `roamclear settle run --metrics-port` counts every close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from settlement.store.db import Row


@dataclass(frozen=True, slots=True)
class CloserRuns:
    """The recorded settlement runs of one state (CLOSED or FAILED)."""

    state: str
    runs: int
    last_finished_at: datetime


def delivery_states(conn: psycopg.Connection[Row]) -> dict[str, int]:
    """CDR deliveries per state (PULL, PENDING, RETRYING, DELIVERED, DEAD)."""
    rows = conn.execute("SELECT state, count(*) AS n FROM cdr_delivery GROUP BY state")
    return {row["state"]: row["n"] for row in rows.fetchall()}


def closer_runs(conn: psycopg.Connection[Row]) -> list[CloserRuns]:
    rows = conn.execute(
        "SELECT state, count(*) AS n, max(finished_at) AS last FROM settlement_run"
        " GROUP BY state ORDER BY state"
    ).fetchall()
    return [CloserRuns(row["state"], row["n"], row["last"]) for row in rows]


def closed_batches(conn: psycopg.Connection[Row]) -> int:
    """Closed settlement batches: one partner statement each."""
    row = conn.execute(
        "SELECT count(*) AS n FROM settlement_batch WHERE state = 'CLOSED'"
    ).fetchone()
    assert row is not None
    return int(row["n"])
