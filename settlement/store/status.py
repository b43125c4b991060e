"""What `roamclear status` shows of PostgreSQL, read in one read-only transaction (one
snapshot: the counts agree with each other):

- the clearing counts of invariant 2 (`books.counts`: pending = in the topic, not decided);
- rejections of the last hour by stage and reason code;
- open positions: per partner and currency, the postings no closed batch holds (what the
  next closes will batch), with their net;
- the last closed batches, and the last run of each state (CLOSED, FAILED);
- dead deliveries per eMSP;
- missing CDRs and stale sessions (`missing_cdrs.missing_cdrs`, the report of
  `roamclear sessions missing-cdrs`).

A posting of key k is in a closed batch unless it came after k's last closed batch: its id
above that batch's watermark, or its value time at or after that batch's period end
(docs/settlement.md, "Membership"); a key without a closed batch has all its postings open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import psycopg

from settlement.sessions.missing import Finding, FindingKind
from settlement.store import books, missing_cdrs
from settlement.store.db import Row

REJECTIONS_WINDOW: Final = timedelta(hours=1)
CLOSED_BATCHES_SHOWN_MAX: Final = 10
FINDINGS_SHOWN_MAX: Final = 20

_REJECTIONS = """
SELECT stage, reason_code, count(*) AS n FROM rejection
 WHERE rejected_at > %(since)s GROUP BY stage, reason_code ORDER BY n DESC, stage, reason_code
"""
_OPEN = """
SELECT substr(p.account, 9) AS partner, p.currency, count(*) AS postings,
       min(p.value_time) AS first_value_time, max(p.value_time) AS last_value_time,
       coalesce(sum(p.amount) FILTER (WHERE p.side = 'CREDIT'), 0)
         - coalesce(sum(p.amount) FILTER (WHERE p.side = 'DEBIT'), 0) AS net_amount
  FROM ledger_posting p
  LEFT JOIN LATERAL (
       SELECT b.watermark, b.period_end FROM settlement_batch b
        WHERE b.account = p.account AND b.currency = p.currency AND b.state = 'CLOSED'
        ORDER BY b.period_end DESC LIMIT 1) last ON true
 WHERE p.account LIKE 'partner:%%'
   AND (last.watermark IS NULL OR p.posting_id > last.watermark
        OR p.value_time >= last.period_end)
 GROUP BY p.account, p.currency ORDER BY p.account, p.currency
"""
_CLOSED = """
SELECT batch_id, partner, currency, period_kind, period_start, period_end, postings,
       net_amount, closed_at
  FROM settlement_batch WHERE state = 'CLOSED' ORDER BY closed_at DESC, batch_id DESC
 LIMIT %(limit)s
"""
_RUNS = """
SELECT DISTINCT ON (state) state, run_id, finished_at, batches, error
  FROM settlement_run ORDER BY state, run_id DESC
"""
_DEAD = """
SELECT emsp, count(*) AS n FROM cdr_delivery WHERE state = 'DEAD' GROUP BY emsp ORDER BY emsp
"""


@dataclass(frozen=True, slots=True)
class OpenPosition:
    partner: str
    currency: str
    postings: int
    first_value_time: datetime
    last_value_time: datetime
    net_amount: Decimal  # credit - debit: + the hub owes the partner


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    batch_id: int
    partner: str
    currency: str
    period_kind: str
    period_start: datetime
    period_end: datetime
    postings: int
    net_amount: Decimal
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class LastRun:
    state: str  # CLOSED or FAILED
    run_id: int
    finished_at: datetime
    batches: int
    error: str | None


@dataclass(frozen=True, slots=True)
class StoreStatus:
    as_of: datetime
    clearing: dict[str, int]  # books.counts: submitted, ledgered, rejected, duplicates, pending
    rejections: tuple[tuple[str, str, int], ...]  # (stage, reason code, count) in the window
    open_positions: tuple[OpenPosition, ...]
    closed_batches: tuple[ClosedBatch, ...]  # newest first, at most CLOSED_BATCHES_SHOWN_MAX
    last_runs: tuple[LastRun, ...]  # the last CLOSED and the last FAILED run, if any
    dead_deliveries: dict[str, int]  # per eMSP
    findings: tuple[Finding, ...]  # missing CDRs and stale sessions, oldest due first

    def missing(self, kind: FindingKind) -> int:
        return sum(1 for finding in self.findings if finding.kind is kind)

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "clearing": self.clearing,
            "rejections_last_hour": [
                {"stage": stage, "reason": reason, "count": n}
                for stage, reason, n in self.rejections
            ],
            "open_batches": [_plain(p) for p in self.open_positions],
            "closed_batches": [_plain(b) for b in self.closed_batches],
            "last_runs": [_plain(r) for r in self.last_runs],
            "dead_deliveries": self.dead_deliveries,
            "missing_cdrs": self.missing(FindingKind.MISSING_CDR),
            "stale_sessions": self.missing(FindingKind.STALE),
            "sessions": [f.json(self.as_of) for f in self.findings[:FINDINGS_SHOWN_MAX]],
        }


def _plain(value: OpenPosition | ClosedBatch | LastRun) -> dict[str, Any]:
    """A row as JSON: times in ISO 8601, amounts as decimal strings (never floats)."""
    plain: dict[str, Any] = {}
    for name in value.__slots__:
        item = getattr(value, name)
        if isinstance(item, datetime):
            item = item.isoformat()
        elif isinstance(item, Decimal):
            item = str(item)
        plain[name] = item
    return plain


def read_status(
    conn: psycopg.Connection[Row], now: datetime, topic: str, in_topic: int | None, stale_h: int
) -> StoreStatus:
    """Everything above, in one REPEATABLE READ, READ ONLY transaction of `conn` (which must
    not be in a transaction: the isolation is set by the transaction's first statement)."""
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rejections = conn.execute(_REJECTIONS, {"since": now - REJECTIONS_WINDOW}).fetchall()
        return StoreStatus(
            as_of=now,
            clearing=books.counts(conn, topic, in_topic),
            rejections=tuple((r["stage"], r["reason_code"], r["n"]) for r in rejections),
            open_positions=tuple(OpenPosition(**r) for r in conn.execute(_OPEN).fetchall()),
            closed_batches=tuple(
                ClosedBatch(**r)
                for r in conn.execute(_CLOSED, {"limit": CLOSED_BATCHES_SHOWN_MAX}).fetchall()
            ),
            last_runs=tuple(LastRun(**r) for r in conn.execute(_RUNS).fetchall()),
            dead_deliveries={r["emsp"]: r["n"] for r in conn.execute(_DEAD).fetchall()},
            findings=tuple(missing_cdrs.missing_cdrs(conn, now, stale_h)),
        )
