"""Sessions as the worker stored them, and the missing-CDR report over them (migration 0013).

A session's CDR is matched by (country_code, party_id, session_id) through cdr_session, the
link clearing writes for every CDR it decodes from a proven submitter. The report asks for a
*booked* CDR (outcome LEDGERED, or DUPLICATE of a booked one): a session is served once its
money is in the ledger. A CDR that came and was rejected (no tariff, implausible, …) leaves
the session unbilled, so the session stays listed, with the rejection reasons next to it:
finance then knows the CPO did send something, and where to look (`roamclear rejected list`).

Which agreement's deadline applies is decided as clearing decides which agreement prices a
CDR (settlement.clearing.reference.agreement_in_force): the pair's own agreement valid at the
session's end, else the CPO's default; without one, `CDR_DEADLINE_H_DEFAULT`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import psycopg

from schemas.hub.agreement import CDR_DEADLINE_H_DEFAULT, Agreement
from schemas.hub.party import PartyRef
from schemas.ocpi.enums import SessionStatus
from settlement.clearing.reference import agreement_in_force
from settlement.sessions.missing import Finding, SessionState, classify
from settlement.store.db import Row
from settlement.store.reference_store import ReferenceSnapshot

LIST_LIMIT_MAX: Final = 10_000

# The current state of each session, narrow: the report and the list read every session, and
# the view `session` would carry each one's whole body through the scan.
_CURRENT = """
WITH s AS (
    SELECT DISTINCT ON (session_key) session_key, cpo, emsp, session_id, status,
           start_date_time, end_date_time, kwh, currency, last_updated,
           occurred_at AS updated_at,
           count(*) OVER (PARTITION BY session_key ORDER BY occurred_at DESC, archive_id DESC
                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS versions
      FROM session_version
     ORDER BY session_key, occurred_at DESC, archive_id DESC)
"""
_BOOKED = """
EXISTS (SELECT 1 FROM cdr_session l JOIN cdr_outcome o USING (archive_id)
         WHERE l.session_key = s.session_key AND o.outcome IN ('LEDGERED', 'DUPLICATE'))
"""
_REJECTED = """
ARRAY(SELECT r.reason_code FROM cdr_session l JOIN cdr_outcome o USING (archive_id)
        JOIN rejection r ON r.rejection_id = o.rejection_id
       WHERE l.session_key = s.session_key ORDER BY r.rejection_id)
"""
# Unbilled sessions that may be due: completed ones (their deadline is per agreement, so it
# is applied in Python), and unfinished ones not updated since the stale time.
_CANDIDATES = f"""{_CURRENT}
SELECT s.session_key, s.cpo, s.emsp, s.session_id, s.status, s.start_date_time,
       s.end_date_time, s.last_updated, s.updated_at, s.kwh, {_REJECTED} AS rejected_cdrs
  FROM s
 WHERE (s.status = 'COMPLETED'
        OR (s.status IN ('PENDING', 'ACTIVE', 'RESERVATION') AND s.updated_at <= %(stale_before)s))
   AND (%(partner)s::text IS NULL OR s.cpo = %(partner)s OR s.emsp = %(partner)s)
   AND NOT {_BOOKED}
"""
_AGREEMENTS = (
    "SELECT body FROM agreement_version WHERE cpo = ANY(%s) ORDER BY agreement_id, version"
)
_LIST = f"""{_CURRENT}
SELECT s.session_key, s.cpo, s.emsp, s.session_id, s.status, s.start_date_time,
       s.end_date_time, s.kwh, s.currency, s.last_updated, s.updated_at, s.versions,
       {_BOOKED} AS cdr_booked
  FROM s
 WHERE (%(partner)s::text IS NULL OR s.cpo = %(partner)s OR s.emsp = %(partner)s)
   AND (%(status)s::text IS NULL OR s.status = %(status)s)
 ORDER BY s.updated_at DESC, s.session_key
 LIMIT %(limit)s OFFSET %(offset)s
"""


@lru_cache(maxsize=4096)
def _party(text: str) -> PartyRef:
    """A stored party reference (checked by its column), validated once per party: the
    report reads every session, and the parties are few."""
    return PartyRef.parse(text)


def _state(row: Row) -> SessionState:
    return SessionState(
        key=row["session_key"],
        cpo=_party(row["cpo"]),
        emsp=_party(row["emsp"]),
        session_id=row["session_id"],
        status=SessionStatus(row["status"]),
        start_date_time=row["start_date_time"],
        end_date_time=row["end_date_time"],
        last_updated=row["last_updated"],
        updated_at=row["updated_at"],
        kwh=row["kwh"],
    )


def _agreements(conn: psycopg.Connection[Row], cpos: set[str]) -> ReferenceSnapshot:
    """The agreement versions of these CPOs, indexed as clearing indexes them."""
    pairs: defaultdict[tuple[str, str | None], list[Agreement]] = defaultdict(list)
    for row in conn.execute(_AGREEMENTS, (sorted(cpos),)).fetchall():
        agreement = Agreement.model_validate(row["body"])
        emsp = None if agreement.emsp is None else str(agreement.emsp)
        pairs[(str(agreement.cpo), emsp)].append(agreement)
    return ReferenceSnapshot(agreements_by_pair=dict(pairs))


def missing_cdrs(
    conn: psycopg.Connection[Row], now: datetime, stale_h: int, partner: str | None = None
) -> list[Finding]:
    """Completed sessions whose CDR is overdue and stale unfinished ones, oldest due first;
    `partner` narrows to the sessions it is the CPO or the eMSP of."""
    rows = conn.execute(
        _CANDIDATES, {"partner": partner, "stale_before": now - timedelta(hours=stale_h)}
    ).fetchall()
    view = _agreements(conn, {row["cpo"] for row in rows if row["status"] == "COMPLETED"})
    findings = []
    for row in rows:
        session = _state(row)
        agreement = agreement_in_force(session.cpo, session.emsp, session.completed_at, view)
        deadline_h = CDR_DEADLINE_H_DEFAULT if agreement is None else agreement.cdr_deadline_h
        named = None if agreement is None else f"{agreement.agreement_id} v{agreement.version}"
        found = classify(
            session, False, deadline_h, stale_h, now, named, tuple(row["rejected_cdrs"])
        )
        if found is not None:
            findings.append(found)
    return sorted(findings, key=lambda f: (f.due_at, f.session.key))


def list_sessions(
    conn: psycopg.Connection[Row],
    partner: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Current sessions, most recently updated first."""
    assert 0 < limit <= LIST_LIMIT_MAX and offset >= 0
    return conn.execute(
        _LIST, {"partner": partner, "status": status, "limit": limit, "offset": offset}
    ).fetchall()


def session_history(conn: psycopg.Connection[Row], session_key: str) -> dict[str, Any] | None:
    """A session's current state, every version, and the CDRs linked to it; None if unknown."""
    versions = conn.execute(
        "SELECT v.archive_id, v.event_id, v.status, v.kwh, v.last_updated, v.occurred_at,"
        " v.submitter, v.proof, jsonb_array_length(coalesce(v.body -> 'charging_periods',"
        " '[]'::jsonb)) AS charging_periods, v.recorded_at FROM session_version v"
        " WHERE v.session_key = %s ORDER BY v.occurred_at, v.archive_id",
        (session_key,),
    ).fetchall()
    if not versions:
        return None
    current = conn.execute(
        "SELECT * FROM session WHERE session_key = %s", (session_key,)
    ).fetchone()
    cdrs = conn.execute(
        "SELECT l.cdr_key, o.outcome, o.transaction_id, r.reason_code, o.decided_at"
        " FROM cdr_session l JOIN cdr_outcome o USING (archive_id)"
        " LEFT JOIN rejection r ON r.rejection_id = o.rejection_id"
        " WHERE l.session_key = %s ORDER BY o.decided_at, l.archive_id",
        (session_key,),
    ).fetchall()
    return {"current": current, "versions": versions, "cdrs": cdrs}
