"""Reading the hub's side of a reconciliation with a partner (`roamclear reconcile`).

    with connect(url) as conn:
        ours, facts = read_sides(conn, PartyRef.parse("NL*TNM"), window, wanted)

One read-only REPEATABLE READ transaction (the CDRs and the facts about the keys the hub
lacks come from one snapshot): the partner's CDRs (its CHARGE transactions as CPO or as
eMSP, those whose end falls in `window` when one is given), each with the REVERSAL of it (a
credit CDR) and the ADJUSTMENTs accepted disputes booked for it (`rating.adjusts`); then, for
the keys the partner lists and the hub has not got among those
(settlement.reconcile.match.keys_to_explain): a booking under the key (another period, or
other parties), and the rejections and OCPI door refusals naming it, found by the trace's own
queries (settlement.store.trace.rejections_naming). Rejections of records submitted by
others than the partner and the key's CPO are left out: a partner's report shows no other
partner's traffic.

The partner's charges are found by a scan of ledger_transaction (no index on cpo or emsp):
an ops command, run per period; reversals by the one-reversal-per-transaction index.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import psycopg
from psycopg.pq import TransactionStatus

from schemas.hub.party import CdrKey, PartyRef
from settlement.batches.periods import Period
from settlement.reconcile.match import keys_to_explain
from settlement.reconcile.model import Component, HubCdr, KeyFacts
from settlement.store.db import Row
from settlement.store.trace import rejections_naming

EXPLAIN_CHUNK: Final = 5_000  # keys per lookup: arrays stay small, every key still answered

_OURS: Final = """
WITH charges AS (
    SELECT transaction_id, cdr_key, currency, cpo, emsp, session_end, amount_excl_vat,
           amount_incl_vat
      FROM ledger_transaction
     WHERE kind = 'CHARGE' AND (cpo = %(partner)s OR emsp = %(partner)s)
       AND session_end >= %(start)s AND session_end < %(end)s)
SELECT c.cdr_key, c.currency, c.cpo, c.emsp, c.session_end, 'CHARGE' AS kind,
       c.cdr_key AS own_key, c.transaction_id::text AS transaction_id, c.amount_excl_vat,
       c.amount_incl_vat, 0 AS rank
  FROM charges c
UNION ALL
SELECT c.cdr_key, c.currency, c.cpo, c.emsp, c.session_end, r.kind, r.cdr_key,
       r.transaction_id::text, r.amount_excl_vat, r.amount_incl_vat, 1
  FROM charges c JOIN ledger_transaction r ON r.reverses = c.transaction_id
UNION ALL
SELECT c.cdr_key, c.currency, c.cpo, c.emsp, c.session_end, a.kind, a.cdr_key,
       a.transaction_id::text, a.amount_excl_vat, a.amount_incl_vat, 2
  FROM charges c JOIN ledger_transaction a
    ON a.kind = 'ADJUSTMENT' AND a.rating->>'adjusts' = c.cdr_key
 ORDER BY cdr_key, rank, own_key
"""

# A key booked outside what _OURS read: its charge (the key's own, or the one a credit
# reverses) says when it ended and between whom.
_BOOKED: Final = """
SELECT t.cdr_key, c.session_end, c.cpo, c.emsp
  FROM ledger_transaction t
  JOIN ledger_transaction c ON c.transaction_id = coalesce(t.reverses, t.transaction_id)
 WHERE t.cdr_key = ANY(%(keys)s::text[]) AND t.kind IN ('CHARGE', 'REVERSAL')
"""


def read_sides(
    conn: psycopg.Connection[Row],
    partner: PartyRef,
    window: Period | None,
    wanted: Sequence[tuple[str, PartyRef | None]],
) -> tuple[tuple[HubCdr, ...], dict[str, KeyFacts]]:
    """The partner's CDRs in `window` (all when None), and facts on the keys `wanted`
    (their (id, CPO) pairs) names that are not among them."""
    fresh = conn.info.transaction_status is TransactionStatus.IDLE
    with conn.transaction():
        if fresh:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        bounds = (
            {"start": "-infinity", "end": "infinity"}
            if window is None
            else {"start": window.start, "end": window.end}
        )
        rows = conn.execute(_OURS, {"partner": str(partner), **bounds}).fetchall()
        ours = _cdrs(rows)
        keys = keys_to_explain(str(partner), wanted, ours)
        facts: dict[str, KeyFacts] = {}
        for start in range(0, len(keys), EXPLAIN_CHUNK):
            facts.update(_facts(conn, partner, keys[start : start + EXPLAIN_CHUNK]))
    return ours, facts


def _cdrs(rows: Sequence[Row]) -> tuple[HubCdr, ...]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["cdr_key"], []).append(row)
    return tuple(
        HubCdr(
            key,
            parts[0]["currency"],
            parts[0]["cpo"],
            parts[0]["emsp"],
            parts[0]["session_end"],
            tuple(
                Component(
                    p["kind"],
                    p["own_key"],
                    p["transaction_id"],
                    p["amount_excl_vat"],
                    p["amount_incl_vat"],
                )
                for p in parts
            ),
        )
        for key, parts in grouped.items()
    )


def _theirs_to_see(partner: PartyRef, key: str, submitter: str | None) -> bool:
    """A record under `key` the partner or the key's CPO submitted (or of unknown origin);
    someone else's is not the partner's to see."""
    return submitter is None or submitter in (str(partner), str(CdrKey.parse(key).party))


def _facts(
    conn: psycopg.Connection[Row], partner: PartyRef, keys: Sequence[str]
) -> dict[str, KeyFacts]:
    booked: dict[str, tuple[datetime, bool]] = {}
    for row in conn.execute(_BOOKED, {"keys": list(keys)}).fetchall():
        booked[row["cdr_key"]] = (row["session_end"], str(partner) in (row["cpo"], row["emsp"]))
    records, refused = rejections_naming(conn, keys)
    asked = set(keys)
    rejections: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        key, outcome = record.cdr_key, record.outcome
        who = record.authenticated_submitter or record.claimed_submitter
        if key is None or outcome.reason_code is None or key not in asked:
            continue
        if _theirs_to_see(partner, key, who):
            rejections.setdefault(key, []).append((outcome.reason_code, outcome.message or ""))
    refusals: dict[str, list[tuple[str, str]]] = {}
    for key, refusal in refused:
        if _theirs_to_see(partner, key, None if refusal.http is None else refusal.http.partner):
            refusals.setdefault(key, []).append((refusal.reason_code, refusal.message))
    return {
        key: KeyFacts(
            key,
            booked[key][0] if key in booked else None,
            key in booked and booked[key][1],
            tuple(rejections.get(key, ())),
            tuple(refusals.get(key, ())),
        )
        for key in keys
        if key in booked or key in rejections or key in refusals
    }
