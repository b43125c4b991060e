"""Reading one database's books for `roamclear books diff` (settlement.books_diff), as rows
sorted by key, streamed with server-side cursors.

What two databases may legitimately disagree on is left out: surrogate ids (archive_id,
posting_id, rejection_id) become the archived record's broker position
(`topic[partition]@offset`), and booking, decision and archiving times are not read.
Transaction ids are compared: they are uuid5 of the canonical CDR key and content hash
(invariant 3), the same in every database that booked the same CDR.

Keys are sorted with the "C" collation (byte order), which is Python's order of str for
UTF-8 text, as the merge in settlement.books_diff requires. Times are read in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum

import psycopg

from settlement.books_diff import BooksRow
from settlement.store.db import Row

FETCH_ROWS = 2_000  # rows per round trip of a server-side cursor


class Scope(StrEnum):
    """Which transactions are compared."""

    ALL = "all"  # every transaction, settlement rounding and dispute adjustments included
    CLEARING = "clearing"  # what clearing books (CHARGE, REVERSAL): what a rebuild reproduces


_KINDS = {
    Scope.ALL: "('CHARGE', 'REVERSAL', 'ROUNDING', 'ADJUSTMENT')",
    Scope.CLEARING: "('CHARGE', 'REVERSAL')",
}
_POSITION = """format('%s[%s]@%s', e.topic, e.partition, e."offset")"""

_TRANSACTIONS = f"""
SELECT t.transaction_id::text COLLATE "C" AS key, t.cdr_key, t.kind, t.reverses::text AS reverses,
       t.content_hash, t.currency, t.cpo, t.emsp, t.session_start::text AS session_start,
       t.session_end::text AS session_end, t.location_id, t.energy_kwh::text AS energy_kwh,
       t.amount_excl_vat::text AS amount_excl_vat, t.amount_incl_vat::text AS amount_incl_vat,
       t.fee::text AS fee, t.rating::text AS rating, {_POSITION} AS source
  FROM ledger_transaction t LEFT JOIN raw_event e USING (archive_id)
 WHERE t.kind IN {{kinds}}
 ORDER BY 1
"""
# A transaction's postings on one account, side and currency are told apart by their order.
_POSTINGS = """
SELECT (p.transaction_id::text || '/' || p.account || '/' || p.side || '/' || p.currency || '#'
        || row_number() OVER (PARTITION BY p.transaction_id, p.account, p.side, p.currency
                              ORDER BY p.amount, p.value_time, p.settlement_period))
       COLLATE "C" AS key,
       p.amount::text AS amount, p.value_time::text AS value_time, p.settlement_period
  FROM ledger_posting p JOIN ledger_transaction t USING (transaction_id)
 WHERE t.kind IN {kinds}
 ORDER BY 1
"""
_BALANCES = """
SELECT (p.account || '/' || p.currency) COLLATE "C" AS key,
       sum(CASE p.side WHEN 'CREDIT' THEN p.amount ELSE -p.amount END)::text AS balance,
       count(*)::text AS postings
  FROM ledger_posting p JOIN ledger_transaction t USING (transaction_id)
 WHERE t.kind IN {kinds}
 GROUP BY p.account, p.currency
 ORDER BY 1
"""
_REJECTIONS = f"""
SELECT coalesce({_POSITION}, 'unarchived#' || r.rejection_id) COLLATE "C" AS key,
       r.reason_code, r.stage, r.message, r.violations::text AS violations, r.submitter,
       r.cdr_key, encode(sha256(convert_to(r.payload, 'UTF8')), 'hex') AS payload_sha256
  FROM rejection r LEFT JOIN raw_event e USING (archive_id)
 ORDER BY 1
"""
_OUTCOMES = f"""
SELECT {_POSITION} COLLATE "C" AS key, o.outcome, o.transaction_id::text AS transaction_id,
       o.proof
  FROM cdr_outcome o JOIN raw_event e USING (archive_id)
 ORDER BY 1
"""


def _rows(conn: psycopg.Connection[Row], name: str, query: str) -> Iterator[BooksRow]:
    with conn.cursor(name=f"books_{name}") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query)
        for row in cursor:
            key = row.pop("key")
            yield key, row


def read_books(conn: psycopg.Connection[Row], scope: Scope) -> Mapping[str, Iterator[BooksRow]]:
    """Every section of the books `conn` sees, as lazy row iterators (consume them inside
    the connection's transaction, one section after the other)."""
    conn.execute("SET TIME ZONE 'UTC'")
    kinds = _KINDS[scope]
    queries = {
        "transactions": _TRANSACTIONS.format(kinds=kinds),
        "postings": _POSTINGS.format(kinds=kinds),
        "balances": _BALANCES.format(kinds=kinds),
        "rejections": _REJECTIONS,
        "outcomes": _OUTCOMES,
    }
    return {name: _rows(conn, name, query) for name, query in queries.items()}
