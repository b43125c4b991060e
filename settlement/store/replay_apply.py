"""`replay --apply`'s writes (migration 0020): the run, and per correction its
replay_correction row and its ledger transactions, in one PostgreSQL transaction.

The correction row goes first, `ON CONFLICT DO NOTHING`: when PostgreSQL already holds the
same correction (constraint one_correction_per_booking_and_reference) the CDR books nothing
this time. A now_booked CDR's CHARGE goes first instead, `ON CONFLICT DO NOTHING` too: a key
booked meanwhile (one booking per CDR key) books nothing either. Every transaction's
postings go in one statement (the ledger checks each statement's transactions balance).
Runs as the clearing writer (roamclear_worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from settlement.replay.corrections import Correction
from settlement.replay.model import Reference
from settlement.store.clearing_rows import posting_rows, transaction_row
from settlement.store.db import Row, jsonb_exact

# One apply at a time: the run's replay reads the bookings in force after the last one.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('roamclear replay apply', 0))"
_RUN_ID = "SELECT nextval('replay_run_run_id_seq') AS run_id"
# Written last, with what the run booked (the rows are append-only; the corrections'
# reference to their run is checked at commit).
_RUN = """
INSERT INTO replay_run (run_id, topic, range_from, range_to, partner, reference,
                        reference_as_of, recorded_by, records, changes, corrections)
VALUES (%(run_id)s, %(topic)s, %(start)s, %(end)s, %(partner)s, %(reference)s, %(as_of)s,
        %(by)s, %(records)s, %(changes)s, %(corrections)s)
"""
_CORRECTION = """
INSERT INTO replay_correction (run_id, archive_id, cdr_key, change, corrects, reference_version,
                               reversal_id, charge_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT one_correction_per_booking_and_reference DO NOTHING
RETURNING correction_id
"""
_TRANSACTION_COLUMNS = """transaction_id, cdr_key, kind, reverses, content_hash, currency,
    cpo, emsp, session_start, session_end, location_id, energy_kwh, amount_excl_vat,
    amount_incl_vat, fee, rating, archive_id, booked_at"""
# The booking in force, reversed: amounts and VAT lines negated, postings mirrored.
_REVERSAL = f"""
INSERT INTO ledger_transaction ({_TRANSACTION_COLUMNS})
SELECT %(id)s::uuid, %(key)s::text, 'ADJUSTMENT', NULL, t.content_hash, t.currency, t.cpo, t.emsp,
       t.session_start, t.session_end, t.location_id, 0, -t.amount_excl_vat,
       -t.amount_incl_vat, -t.fee,
       jsonb_build_object('kind', 'REVERSAL', 'replay_run', %(run)s::bigint,
                          'adjusts', %(cdr_key)s::text,
                          'adjusts_transaction', t.transaction_id,
                          'original_value_time', t.session_end,
                          'settlement_period', t.rating->'settlement_period',
                          'vat_breakdown', coalesce((
           SELECT jsonb_agg(jsonb_build_object(
                      'vat', l->'vat', 'excl_vat', (-(l->>'excl_vat')::numeric)::text,
                      'incl_vat', (-(l->>'incl_vat')::numeric)::text)
                  || CASE WHEN l ? 'adjustment' THEN '{{"adjustment": true}}'::jsonb
                          ELSE '{{}}'::jsonb END)
             FROM jsonb_array_elements(t.rating->'vat_breakdown') l), '[]'::jsonb)),
       NULL, %(at)s::timestamptz
  FROM ledger_transaction t WHERE t.transaction_id = %(corrects)s
"""
_MIRRORED = """
INSERT INTO ledger_posting (transaction_id, account, side, amount, currency, value_time,
                            settlement_period)
SELECT %(id)s::uuid, account, CASE side WHEN 'DEBIT' THEN 'CREDIT' ELSE 'DEBIT' END,
       amount, currency, %(at)s::timestamptz, settlement_period
  FROM ledger_posting WHERE transaction_id = %(corrects)s ORDER BY posting_id
"""
_CHARGE_ONCE = f"""
INSERT INTO ledger_transaction ({_TRANSACTION_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING RETURNING transaction_id
"""
_POSTING_COLUMNS = "transaction_id, account, side, amount, currency, value_time, settlement_period"


@dataclass(frozen=True, slots=True)
class RunHeader:
    """What a run replayed, and who applied it."""

    topic: str
    start: datetime
    end: datetime
    partner: str | None
    reference: Reference
    recorded_by: str
    records: int
    changes: dict[str, int]


@dataclass(frozen=True, slots=True)
class AppliedRun:
    run_id: int
    booked: int  # corrections booked by this run
    already: int  # not booked: held already (an earlier run), or the key booked meanwhile


def lock(conn: psycopg.Connection[Row]) -> None:
    """Hold the apply lock until the caller's transaction ends."""
    conn.execute(_LOCK)


def apply(
    conn: psycopg.Connection[Row], header: RunHeader, corrections: list[Correction], at: datetime
) -> AppliedRun:
    """Book the corrections in the caller's transaction (which holds `lock`)."""
    row = conn.execute(_RUN_ID).fetchone()
    assert row is not None
    run_id: int = row["run_id"]
    booked = sum(_book(conn, run_id, c, at) for c in corrections)
    conn.execute(
        _RUN,
        {
            "run_id": run_id,
            "topic": header.topic,
            "start": header.start,
            "end": header.end,
            "partner": header.partner,
            "reference": header.reference.mode.value,
            "as_of": header.reference.as_of,
            "by": header.recorded_by,
            "records": header.records,
            "changes": jsonb_exact(header.changes),
            "corrections": booked,
        },
    )
    return AppliedRun(run_id, booked, len(corrections) - booked)


def _book(conn: psycopg.Connection[Row], run_id: int, c: Correction, at: datetime) -> bool:
    """One correction; False when PostgreSQL holds it already (or, for a now_booked CDR,
    another record's booking holds its key: a re-send booked since, or a conflicting one)."""
    record = c.verdict.record
    if c.reversal_id is None:  # now_booked: the CHARGE clearing would have booked
        row = transaction_row(c.booked, record.archive_id, at)
        booked = conn.execute(_CHARGE_ONCE, row).fetchone()
        if booked is None:
            return False
        _insert(conn, [], posting_rows(c.booked))
    inserted = conn.execute(
        _CORRECTION,
        (
            run_id,
            record.archive_id,
            c.verdict.cdr_key,
            c.change.value,
            c.corrects,
            c.reference_version,
            c.reversal_id,
            c.charge_id,
        ),
    ).fetchone()
    if inserted is None:
        assert c.reversal_id is not None, "a now_booked CDR's charge was new"
        return False
    if c.reversal_id is None:
        return True
    ids = {"id": c.reversal_id, "key": c.reversal_key, "corrects": c.corrects, "at": at}
    conn.execute(_REVERSAL, ids | {"run": run_id, "cdr_key": c.verdict.cdr_key})
    conn.execute(_MIRRORED, ids)
    _insert(conn, [_charge_row(run_id, c, at)], _charge_postings(c, at))
    return True


def _charge_row(run_id: int, c: Correction, at: datetime) -> tuple[Any, ...]:
    """The new charge as an ADJUSTMENT: the replayed booking's row under its own key, its
    record linked to the run and to the transaction it corrects."""
    row = list(transaction_row(c.booked, 0, at))
    rating = c.booked.entry.trace.as_json() | {
        "replay_run": run_id,
        "adjusts": c.verdict.cdr_key,
        "adjusts_transaction": c.corrects,
        "original_value_time": c.booked.cdr.end_date_time.isoformat(),
    }
    row[0:4] = [UUID(c.charge_id), c.charge_key, "ADJUSTMENT", None]
    row[11] = 0  # energy: the CDR's is counted once, on its original booking
    row[15:17] = [jsonb_exact(rating), None]
    return tuple(row)


def _charge_postings(c: Correction, at: datetime) -> list[tuple[Any, ...]]:
    """The replayed booking's postings, in the open period (value time `at`)."""
    tid = UUID(c.charge_id)
    return [(tid, *p[1:5], at, p[6]) for p in posting_rows(c.booked)]


def _insert(
    conn: psycopg.Connection[Row],
    transactions: list[tuple[Any, ...]],
    postings: list[tuple[Any, ...]],
) -> None:
    """The transactions, then all their postings in one statement."""
    marks = ", ".join(["%s"] * 18)
    for transaction in transactions:
        conn.execute(
            f"INSERT INTO ledger_transaction ({_TRANSACTION_COLUMNS}) VALUES ({marks})", transaction
        )
    if postings:
        values = ", ".join(f"({', '.join(['%s'] * 7)})" for _ in postings)
        flat = [value for posting in postings for value in posting]
        conn.execute(f"INSERT INTO ledger_posting ({_POSTING_COLUMNS}) VALUES {values}", flat)


class RunNotFound(LookupError):
    """No applied replay run has this id: `roamclear replays list` shows them."""


_RUNS = """
SELECT run_id, topic, range_from, range_to, partner, reference, reference_as_of, recorded_by,
       records, changes, corrections, applied_at
  FROM replay_run
"""
# What a run booked, with the amounts of the booking it corrected and of the new charge.
_BOOKED = """
SELECT c.correction_id, c.archive_id, c.cdr_key, c.change, c.corrects, c.reversal_id,
       c.charge_id, c.reference_version, n.currency, n.cpo, n.emsp,
       o.amount_excl_vat AS was_excl_vat, o.amount_incl_vat AS was_incl_vat, o.fee AS was_fee,
       n.amount_excl_vat, n.amount_incl_vat, n.fee
  FROM replay_correction c
  JOIN ledger_transaction n ON n.transaction_id = c.charge_id
  LEFT JOIN ledger_transaction o ON o.transaction_id = c.corrects
 WHERE c.run_id = %s ORDER BY c.correction_id
"""


def runs(conn: psycopg.Connection[Row], limit: int) -> list[Row]:
    """The newest applied runs first."""
    return conn.execute(_RUNS + " ORDER BY run_id DESC LIMIT %s", (limit,)).fetchall()


def run_detail(conn: psycopg.Connection[Row], run_id: int) -> tuple[Row, list[Row]]:
    """A run and what it booked (RunNotFound when there is no such run)."""
    row = conn.execute(_RUNS + " WHERE run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(f"no applied replay run {run_id}")
    return row, conn.execute(_BOOKED, (run_id,)).fetchall()
