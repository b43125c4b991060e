"""The settlement closer against PostgreSQL: the rules of settlement.batches.closer in SQL.

One database transaction per close:

1. ``LOCK TABLE ledger_posting IN SHARE ROW EXCLUSIVE MODE`` (through
   ``settlement_lock_postings()``, migration 0009: the closer's role may take this one lock
   and nothing else that UPDATE privileges would allow): waits for every in-flight
   insert to commit and holds new ones until the close commits (typically well under a
   second; seconds for a million postings). The mode conflicts with itself, so two closers
   run one after the other: the second finds nothing left to close.
2. The watermark is ``max(posting_id)``: every posting at or below it is committed and seen.
3. One aggregate query over the postings above the last run's ``next_scan_from`` (joined
   with their transactions) groups the unbatched ones by (key, target period) with totals
   and the body of checksum v2 (an ordered ``string_agg`` of line digests, hashed with
   ``sha256``).
4. Rounding transactions (COPY) for batches whose net is not in minor units; the watermark
   moves past their postings; their partner legs' line digests are read back.
5. The run row and the batches (COPY, state CLOSING) with checksum v2 and the seal: an HMAC
   with the statement key, chained to the key's previous batch (settlement.batches.seal),
   then one UPDATE to CLOSED. The seal is made before the CLOSED update because a CLOSED
   row never changes again.

A closer killed anywhere before the commit leaves nothing: the transaction rolls back.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import psycopg

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import HUB_ROUNDING, TransactionId
from settlement.batches.checksum import (
    CHECKSUM_V2,
    NO_ROUNDING,
    StoredBatch,
    batch_checksum_v2,
    body_digest,
)
from settlement.batches.model import BatchKey, ClosePolicy
from settlement.batches.periods import following_start, period_start_sql
from settlement.batches.rounding import RoundingEntry, rounding_entry, rounding_transaction_id
from settlement.batches.seal import PreviousBatch, SealKey, chain_link, seal
from settlement.store.db import Row, connect, jsonb_exact
from settlement.store.sealing import batch_totals_sql, body_digest_sql, line_digest_sql

LOCK_TIMEOUT_S_MAX: Final = 600
"""A closer waits at most this long for in-flight inserts or another closer."""

_KEY_STATE = """
    SELECT DISTINCT ON (account, currency, period_kind)
           account, currency, period_kind, period_end AS closed_through, watermark,
           checksum_version, checksum, seal
      FROM settlement_batch
     ORDER BY account, currency, period_kind, period_start DESC
"""

_LATE: Final = "m.value_time < m.period_start"  # a posting of an earlier period, late

_AGGREGATE = f"""
WITH key_state AS ({_KEY_STATE}),
candidate AS (
    SELECT p.posting_id, p.transaction_id, p.account, p.currency,
           p.settlement_period AS period_kind, p.side, p.amount, p.value_time,
           t.kind, t.cdr_key, t.cpo, t.emsp, t.session_start, t.session_end, t.location_id,
           t.energy_kwh, t.amount_excl_vat, t.amount_incl_vat, t.fee, t.rating,
           CASE WHEN p.value_time < ks.closed_through THEN ks.closed_through
                ELSE {period_start_sql("p.settlement_period", "p.value_time", "%(tz)s")}
           END AS period_start
      FROM ledger_posting p
      JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
      LEFT JOIN key_state ks
        ON ks.account = p.account AND ks.currency = p.currency
       AND ks.period_kind = p.settlement_period
     WHERE p.posting_id > %(scan_from)s AND p.posting_id <= %(watermark)s
       AND p.account LIKE 'partner:%%'
       AND (ks.closed_through IS NULL OR p.value_time >= ks.closed_through
            OR p.posting_id > ks.watermark)
),
marked AS (
    SELECT c.*, c.period_start < {
    period_start_sql("c.period_kind", "%(as_of)s::timestamptz - %(grace)s::interval", "%(tz)s")
} AS closable
      FROM candidate c
)
SELECT account, currency, period_kind, period_start, bool_and(closable) AS closable,
       {batch_totals_sql("m", _LATE)},
       min(posting_id) AS first_posting_id,
       {body_digest_sql(line_digest_sql("m", "m", _LATE), "posting_id", "closable")} AS body
  FROM marked m
 GROUP BY account, currency, period_kind, period_start
"""

_BATCH_COLUMNS: Final = (
    "batch_id",
    "run_id",
    "account",
    "currency",
    "period_kind",
    "period_start",
    "period_end",
    "settlement_tz",
    "state",
    "watermark",
    "prior_watermark",
    "postings",
    "late_postings",
    "debit_total",
    "credit_total",
    "rounding",
    "late_net",
    "rounding_transaction_id",
    "checksum",
    "checksum_version",
    "seal",
    "seal_key_id",
    "seal_link",
    "created_at",
)


class CloseRefused(Exception):
    """The close was asked for something the rules forbid (e.g. an ``as_of`` in the future,
    which would make postings still to come look late). Pass a past or present instant."""


@dataclass(frozen=True, slots=True)
class ClosedSummary:
    """One batch a close created, for the CLI and tests."""

    batch_id: int
    partner: str
    currency: str
    period_kind: str
    period_start: datetime
    period_end: datetime
    postings: int
    late_postings: int
    net_amount: Decimal
    rounding: Decimal
    checksum: str
    seal: str


@dataclass(frozen=True, slots=True)
class CloseReport:
    run_id: int | None  # None: nothing to close, nothing written
    as_of: datetime
    watermark: int
    batches: tuple[ClosedSummary, ...]
    duration_s: float

    @property
    def postings(self) -> int:
        return sum(batch.postings for batch in self.batches)


@dataclass(frozen=True, slots=True)
class _Planned:
    key: BatchKey
    start: datetime
    end: datetime
    postings: int
    late_postings: int
    debit: Decimal
    credit: Decimal
    late_net: Decimal
    body: str
    entry: RoundingEntry | None
    rounding_id: TransactionId | None


def _plan(row: Row, policy: ClosePolicy) -> _Planned:
    key = BatchKey(row["account"], row["currency"], SettlementPeriod(row["period_kind"]))
    start = row["period_start"].astimezone(UTC)
    debit, credit = row["debit"], row["credit"]
    entry = rounding_entry(credit - debit, key.currency)
    postings = row["postings"]
    rounding_id = None
    if entry is not None:
        postings += 1
        rounding_id = rounding_transaction_id(key.account, key.currency, key.period_kind, start)
        if entry.partner_side.value == "CREDIT":
            credit += entry.amount
        else:
            debit += entry.amount
    return _Planned(
        key,
        start,
        following_start(start, key.period_kind, policy.time_zone),
        postings,
        row["late_postings"],
        debit,
        credit,
        row["late_net"],
        row["body"],
        entry,
        rounding_id,
    )


def _book_rounding(conn: psycopg.Connection[Row], planned: list[_Planned]) -> None:
    """One ROUNDING transaction per batch that needs one: partner leg + hub:rounding leg."""
    todo = [p for p in planned if p.entry is not None]
    if not todo:
        return
    columns = (
        "transaction_id, cdr_key, kind, content_hash, currency, cpo, emsp, session_start, "
        "session_end, energy_kwh, amount_excl_vat, amount_incl_vat, fee, rating"
    )
    with conn.cursor().copy(f"COPY ledger_transaction ({columns}) FROM STDIN") as copy:
        for p in todo:
            assert p.entry is not None and p.rounding_id is not None
            rating = {
                "rounding": {
                    "step": "round_minor_unit",
                    "mode": "HALF_UP",
                    "net": str(p.credit - p.debit - p.entry.signed),
                    "difference": str(p.entry.signed),
                }
            }
            copy.write_row(
                (
                    p.rounding_id,
                    f"ROUNDING*{p.rounding_id}",
                    "ROUNDING",
                    hashlib.sha256(p.rounding_id.encode()).hexdigest(),
                    p.key.currency,
                    p.key.partner,
                    p.key.partner,
                    p.start,
                    p.end,
                    0,
                    0,
                    0,
                    0,
                    jsonb_exact(rating),
                )
            )
    columns = "transaction_id, account, side, amount, currency, value_time, settlement_period"
    with conn.cursor().copy(f"COPY ledger_posting ({columns}) FROM STDIN") as copy:
        for p in todo:
            assert p.entry is not None
            kind = p.key.period_kind.value
            copy.write_row(
                (
                    p.rounding_id,
                    p.key.account,
                    p.entry.partner_side.value,
                    p.entry.amount,
                    p.key.currency,
                    p.start,
                    kind,
                )
            )
            copy.write_row(
                (
                    p.rounding_id,
                    HUB_ROUNDING,
                    p.entry.hub_side.value,
                    p.entry.amount,
                    p.key.currency,
                    p.start,
                    kind,
                )
            )


def _rounding_digests(conn: psycopg.Connection[Row], planned: list[_Planned]) -> dict[str, str]:
    """The v2 line digest of each rounding transaction's partner leg, by transaction id."""
    ids = [p.rounding_id for p in planned if p.rounding_id is not None]
    if not ids:
        return {}
    # a rounding posting carries its period's start as value_time: it is never late
    rows = conn.execute(
        f"SELECT p.transaction_id::text AS id, {line_digest_sql('p', 't', 'false')} AS digest"
        " FROM ledger_posting p JOIN ledger_transaction t ON t.transaction_id = p.transaction_id"
        " WHERE p.transaction_id = ANY(%s::uuid[]) AND p.account LIKE 'partner:%%'",
        (ids,),
    ).fetchall()
    digests = {row["id"]: row["digest"] for row in rows}
    assert len(digests) == len(ids) == len(rows), "one partner leg per rounding transaction"
    return digests


def _scalar(conn: psycopg.Connection[Row], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def close_once(
    database_url: str, as_of: datetime | None, policy: ClosePolicy, seal_key: SealKey
) -> CloseReport:
    """Close every (partner key, period) that may close at ``as_of`` (default: now), each
    batch sealed with ``seal_key`` (the hub's statement key; pipeline.hubkeys loads it)."""
    started = time.perf_counter()
    # autocommit: each ``conn.transaction()`` below is a real transaction, not a savepoint
    with connect(database_url, autocommit=True) as conn:
        now = _scalar(conn, "SELECT now()")
        as_of = now if as_of is None else as_of
        if as_of > now:
            raise CloseRefused(f"as_of {as_of.isoformat()} is in the future")
        try:
            with conn.transaction():
                report = _close(conn, as_of, policy, seal_key, started)
        except Exception as error:
            _record_failure(conn, as_of, policy, error)
            raise
    return report


def _close(
    conn: psycopg.Connection[Row],
    as_of: datetime,
    policy: ClosePolicy,
    seal_key: SealKey,
    started: float,
) -> CloseReport:
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    # JIT compiling the aggregate costs more (0.1-0.5 s) than it saves on a million rows
    conn.execute("SET LOCAL jit = off")
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S_MAX}s'")
    conn.execute("SELECT settlement_lock_postings()")
    watermark = _scalar(conn, "SELECT coalesce(max(posting_id), 0) FROM ledger_posting")
    scan_from = _scalar(
        conn,
        "SELECT coalesce((SELECT next_scan_from FROM settlement_run "
        "WHERE state = 'CLOSED' ORDER BY run_id DESC LIMIT 1), 0)",
    )
    params = {
        "tz": policy.time_zone,
        "scan_from": scan_from,
        "watermark": watermark,
        "as_of": as_of,
        "grace": policy.grace,
    }
    groups = conn.execute(_AGGREGATE, params).fetchall()
    closing = sorted(
        (_plan(row, policy) for row in groups if row["closable"]),
        key=lambda p: (p.key.account, p.key.currency, p.key.period_kind, p.start),
    )
    if not closing:
        return CloseReport(None, as_of, watermark, (), time.perf_counter() - started)
    _book_rounding(conn, closing)
    watermark = _scalar(conn, "SELECT coalesce(max(posting_id), 0) FROM ledger_posting")
    open_first = [row["first_posting_id"] for row in groups if not row["closable"]]
    next_scan_from = min([watermark, *(first - 1 for first in open_first)])
    run_id = _scalar(
        conn,
        "INSERT INTO settlement_run (as_of, settlement_tz, grace, state, scan_from, watermark,"
        " next_scan_from, batches, postings) VALUES (%s, %s, %s, 'CLOSED', %s, %s, %s, %s, %s)"
        " RETURNING run_id",
        (
            as_of,
            policy.time_zone,
            policy.grace,
            scan_from,
            watermark,
            next_scan_from,
            len(closing),
            sum(p.postings for p in closing),
        ),
    )
    closed_at = _scalar(conn, "SELECT clock_timestamp()")
    sealed = _Sealing(seal_key, _rounding_digests(conn, closing), closed_at)
    _insert_batches(conn, run_id, closing, watermark, policy, sealed)
    conn.execute(
        "UPDATE settlement_batch SET state = 'CLOSED', closed_at = %s WHERE run_id = %s",
        (closed_at, run_id),
    )
    return CloseReport(
        run_id, as_of, watermark, _summaries(conn, run_id), time.perf_counter() - started
    )


@dataclass(frozen=True, slots=True)
class _Sealing:
    """What sealing a run's batches needs besides the plan."""

    key: SealKey
    rounding_digests: dict[str, str]  # rounding transaction id -> its partner leg's digest
    closed_at: datetime  # created_at and closed_at of every batch of the run


def _insert_batches(
    conn: psycopg.Connection[Row],
    run_id: int,
    closing: list[_Planned],
    watermark: int,
    policy: ClosePolicy,
    sealing: _Sealing,
) -> None:
    prior: dict[BatchKey, tuple[int, PreviousBatch | None]] = {
        BatchKey(row["account"], row["currency"], SettlementPeriod(row["period_kind"])): (
            row["watermark"],
            PreviousBatch(row["checksum_version"], row["checksum"], row["seal"]),
        )
        for row in conn.execute(_KEY_STATE).fetchall()
    }
    batch_ids = sorted(
        row["id"]
        for row in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('settlement_batch', 'batch_id')) AS id"
            " FROM generate_series(1, %s)",
            (len(closing),),
        ).fetchall()
    )
    with conn.cursor().copy(
        f"COPY settlement_batch ({', '.join(_BATCH_COLUMNS)}) FROM STDIN"
    ) as copy:
        for batch_id, p in zip(batch_ids, closing, strict=True):
            prior_watermark, previous = prior.get(p.key, (0, None))
            entry = p.entry
            stored = StoredBatch(
                batch_id=batch_id,
                key=p.key,
                period_start=p.start,
                period_end=p.end,
                settlement_tz=policy.time_zone,
                watermark=watermark,
                prior_watermark=prior_watermark,
                created_at=sealing.closed_at,
                closed_at=sealing.closed_at,
                postings=p.postings,
                late_postings=p.late_postings,
                debit=p.debit,
                credit=p.credit,
                rounding=Decimal(0) if entry is None else entry.signed,
                late_net=p.late_net,
                rounding_transaction_id=p.rounding_id,
            )
            rounding = (
                NO_ROUNDING if p.rounding_id is None else sealing.rounding_digests[p.rounding_id]
            )
            checksum = batch_checksum_v2(stored, p.body or body_digest([]), rounding)
            link = chain_link(previous)
            batch_seal = seal(sealing.key, stored, checksum, link)
            prior[p.key] = (watermark, PreviousBatch(CHECKSUM_V2, checksum, batch_seal))
            copy.write_row(
                (
                    batch_id,
                    run_id,
                    p.key.account,
                    p.key.currency,
                    p.key.period_kind.value,
                    p.start,
                    p.end,
                    policy.time_zone,
                    "CLOSING",
                    watermark,
                    prior_watermark,
                    p.postings,
                    p.late_postings,
                    p.debit,
                    p.credit,
                    Decimal(0) if entry is None else entry.signed,
                    p.late_net,
                    p.rounding_id,
                    checksum,
                    CHECKSUM_V2,
                    batch_seal,
                    sealing.key.key_id,
                    link,
                    sealing.closed_at,
                )
            )


def _summaries(conn: psycopg.Connection[Row], run_id: int) -> tuple[ClosedSummary, ...]:
    rows = conn.execute(
        "SELECT batch_id, partner, currency, period_kind, period_start, period_end, postings,"
        " late_postings, net_amount, rounding, checksum, seal FROM settlement_batch"
        " WHERE run_id = %s ORDER BY batch_id",
        (run_id,),
    ).fetchall()
    return tuple(ClosedSummary(**row) for row in rows)


def _record_failure(
    conn: psycopg.Connection[Row], as_of: datetime, policy: ClosePolicy, error: Exception
) -> None:
    """A FAILED run row, written after the rollback (the close itself left nothing)."""
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO settlement_run (as_of, settlement_tz, grace, state, error)"
                " VALUES (%s, %s, %s, 'FAILED', %s)",
                (as_of, policy.time_zone, policy.grace, f"{type(error).__name__}: {error}"[:2000]),
            )
    except psycopg.Error:
        pass  # the connection itself is gone (a killed server): nothing more to record
