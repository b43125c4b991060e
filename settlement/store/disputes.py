"""Disputes in PostgreSQL (migration 0018): opening one, moving it through its guarded
transitions with a history row each, and reading them back for the CLI and the finance API.

The rules are checked here first (settlement.disputes, every problem at once) and again by
the database's triggers; a race between two deciders ends with one transition and the other
refused (the row is locked while it moves). Nothing here touches a ledger row or a batch.
"""

from __future__ import annotations

from typing import Final

import psycopg

from schemas.hub.party import PartyRef
from settlement.disputes import (
    Action,
    BookedCdr,
    Dispute,
    DisputeNotFound,
    DisputeRefused,
    DisputeState,
    Reason,
    StatementMark,
    Transition,
    adjustment_problems,
    credit_problems,
    opening_problems,
    parse_amount,
    refusal,
    resolution_problems,
)
from settlement.store.db import Row

LIST_LIMIT_MAX: Final = 1000
_ONE_OPEN: Final = "one_open_dispute_per_cdr_and_party"

_BOOKED: Final = """
SELECT t.cdr_key, t.kind, o.cdr_key AS reverses_cdr_key, t.cpo, t.emsp, t.currency
  FROM ledger_transaction t
  LEFT JOIN ledger_transaction o ON o.transaction_id = t.reverses
 WHERE t.cdr_key = %s
"""
_COLUMNS: Final = (
    "dispute_id, cdr_key, opened_by, reason, claimed_amount, currency, note, state, "
    "credit_cdr_key, adjustment_id::text, opened_at"
)


def booked(conn: psycopg.Connection[Row], cdr_key: str) -> BookedCdr | None:
    row = conn.execute(_BOOKED, (cdr_key,)).fetchone()
    return None if row is None else BookedCdr(**row)


def _dispute(row: Row, history: tuple[Transition, ...] = ()) -> Dispute:
    return Dispute(
        dispute_id=row["dispute_id"],
        cdr_key=row["cdr_key"],
        opened_by=row["opened_by"],
        reason=Reason(row["reason"]),
        claimed_amount=row["claimed_amount"],
        currency=row["currency"],
        note=row["note"],
        state=DisputeState(row["state"]),
        credit_cdr_key=row["credit_cdr_key"],
        adjustment_id=row["adjustment_id"],
        opened_at=row["opened_at"],
        history=history,
    )


def _history(conn: psycopg.Connection[Row], dispute_id: int) -> tuple[Transition, ...]:
    rows = conn.execute(
        "SELECT seq, from_state, to_state, actor, recorded_by, note, at "
        "FROM dispute_transition WHERE dispute_id = %s ORDER BY seq",
        (dispute_id,),
    ).fetchall()
    return tuple(
        Transition(
            seq=r["seq"],
            from_state=None if r["from_state"] is None else DisputeState(r["from_state"]),
            to_state=DisputeState(r["to_state"]),
            actor=r["actor"],
            recorded_by=r["recorded_by"],
            note=r["note"],
            at=r["at"],
        )
        for r in rows
    )


def _record(
    conn: psycopg.Connection[Row],
    dispute_id: int,
    seq: int,
    edge: tuple[DisputeState | None, DisputeState],
    actor: str,
    recorded_by: str,
    note: str,
) -> None:
    conn.execute(
        "INSERT INTO dispute_transition (dispute_id, seq, from_state, to_state, actor, "
        "recorded_by, note) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            dispute_id,
            seq,
            None if edge[0] is None else edge[0].value,
            edge[1].value,
            actor,
            recorded_by,
            note,
        ),
    )


def open_dispute(
    conn: psycopg.Connection[Row],
    cdr_key: str,
    opened_by: str,
    reason: str,
    claimed_amount: str,
    note: str,
    recorded_by: str,
) -> Dispute:
    """Open a dispute of a booked CDR; DisputeRefused with every problem, or when the party
    already has one open on this CDR."""
    cdr = booked(conn, cdr_key)
    problems = opening_problems(cdr, opened_by, reason, claimed_amount, note)
    if problems:
        raise DisputeRefused(problems)
    assert cdr is not None
    amount = parse_amount(claimed_amount)
    party = str(PartyRef.parse(opened_by))
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO dispute (cdr_key, opened_by, reason, claimed_amount, currency, "
                f"note, state, transitions) VALUES (%s, %s, %s, %s, %s, %s, 'open', 1) "
                f"RETURNING {_COLUMNS}",
                (cdr.cdr_key, party, reason, amount, cdr.currency, note),
            ).fetchone()
            assert row is not None
            _record(conn, row["dispute_id"], 1, (None, DisputeState.OPEN), party, recorded_by, note)
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != _ONE_OPEN:
            raise
        (existing,) = list_disputes(conn, DisputeState.OPEN, party, cdr_key=cdr.cdr_key)
        raise DisputeRefused(
            (f"{party} already has dispute {existing.dispute_id} open on {cdr.cdr_key}",)
        ) from None
    return _dispute(row, _history(conn, row["dispute_id"]))


def move(
    conn: psycopg.Connection[Row],
    dispute_id: int,
    action: Action,
    actor: str,
    note: str,
    recorded_by: str,
    credit_cdr_key: str | None = None,
    adjustment_amount: str | None = None,
) -> Dispute:
    """Take `action` on an open dispute as `actor` (HUB, or the opener to withdraw), with its
    history row, in one transaction. Accepting names the credit CDR that reversed the CDR, or
    the amount of the ADJUSTMENT the hub books (dispute_accept_by_adjustment, migration 0018,
    into the currently open period)."""
    with conn.transaction():
        row = conn.execute(
            f"SELECT {_COLUMNS}, transitions FROM dispute WHERE dispute_id = %s FOR UPDATE",
            (dispute_id,),
        ).fetchone()
        if row is None:
            raise DisputeNotFound(f"no dispute {dispute_id}")
        current = _dispute(row)
        problem = refusal(current.state, action, actor, current.opened_by, note)
        problems = (() if problem is None else (problem,)) + resolution_problems(
            action, credit_cdr_key, adjustment_amount
        )
        disputed = booked(conn, current.cdr_key)
        assert disputed is not None  # a foreign key
        if not problems and credit_cdr_key is not None:
            problems += credit_problems(disputed, booked(conn, credit_cdr_key))
        if not problems and adjustment_amount is not None:
            problems += adjustment_problems(disputed, current.claimed_amount, adjustment_amount)
        if problems:
            raise DisputeRefused(problems)
        if adjustment_amount is not None:
            conn.execute(
                "SELECT dispute_accept_by_adjustment(%s, %s, %s, %s)",
                (dispute_id, parse_amount(adjustment_amount), recorded_by, note),
            )
        else:
            seq = row["transitions"] + 1
            edge = (current.state, action.target)
            _record(conn, dispute_id, seq, edge, actor, recorded_by, note)
            conn.execute(
                "UPDATE dispute SET state = %s, transitions = %s, credit_cdr_key = %s "
                "WHERE dispute_id = %s",
                (action.target.value, seq, credit_cdr_key, dispute_id),
            )
    return show(conn, dispute_id)


def show(conn: psycopg.Connection[Row], dispute_id: int) -> Dispute:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM dispute WHERE dispute_id = %s", (dispute_id,)
    ).fetchone()
    if row is None:
        raise DisputeNotFound(f"no dispute {dispute_id}")
    return _dispute(row, _history(conn, dispute_id))


def list_disputes(
    conn: psycopg.Connection[Row],
    state: DisputeState | None = None,
    opened_by: str | None = None,
    limit: int = 100,
    offset: int = 0,
    cdr_key: str | None = None,
) -> list[Dispute]:
    """Disputes, newest first, without their history (`show` has it)."""
    assert 1 <= limit <= LIST_LIMIT_MAX and offset >= 0
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM dispute "
        "WHERE (%(state)s::text IS NULL OR state = %(state)s) "
        "AND (%(by)s::text IS NULL OR opened_by = %(by)s) "
        "AND (%(cdr)s::text IS NULL OR cdr_key = %(cdr)s) "
        "ORDER BY dispute_id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {
            "state": None if state is None else state.value,
            "by": opened_by,
            "cdr": cdr_key,
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    return [_dispute(row) for row in rows]


def disputes_of(conn: psycopg.Connection[Row], cdr_keys: list[str]) -> tuple[Dispute, ...]:
    """Every dispute of these CDRs, oldest first, each with its history (for the trace)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM dispute WHERE cdr_key = ANY(%s::text[]) ORDER BY dispute_id",
        (cdr_keys,),
    ).fetchall()
    return tuple(_dispute(row, _history(conn, row["dispute_id"])) for row in rows)


_MARKS: Final = """
SELECT DISTINCT p.transaction_id::text, d.dispute_id, d.state, d.opened_by, d.reason,
       t.rating->>'adjusts' AS adjusts, t.rating->>'original_value_time' AS original_value_time
  FROM settlement_batch b
 CROSS JOIN LATERAL settlement_batch_postings(b) p
  JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
  JOIN dispute d ON d.cdr_key = t.cdr_key OR d.adjustment_id = t.transaction_id
 WHERE b.batch_id = %s
 ORDER BY 1, 2
"""


def statement_marks(conn: psycopg.Connection[Row], batch_id: int) -> tuple[StatementMark, ...]:
    """The disputes on a batch's lines, as of now (settlement.disputes.mark_statement)."""
    return tuple(
        StatementMark(
            transaction_id=row["transaction_id"],
            dispute_id=row["dispute_id"],
            state=DisputeState(row["state"]),
            opened_by=row["opened_by"],
            reason=Reason(row["reason"]),
            adjusts=row["adjusts"],
            original_value_time=row["original_value_time"],
        )
        for row in conn.execute(_MARKS, (batch_id,)).fetchall()
    )
