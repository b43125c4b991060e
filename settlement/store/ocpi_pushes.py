"""What partners pushed to the hub's session, tariff and location receivers, counted and
listed across modules (CDR receipts are `books.ingest_counts`, their refusals `rejection`).

Every push is kept, accepted or refused (session_push, 0013; ocpi_reference_receipt, 0014):
`counts` says how many of each, `refused` lists the refusals with their reasons, so a partner's
"I sent it" can be answered for every module, not only CDRs.

    counts(conn)  -> {"sessions": {"received": 9, "accepted": 8, "refused": 1}, "tariffs": …}
    refused(conn, module="tariffs", partner="NL*TNM", limit=100)
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from settlement.store.db import Row

MODULES: Final = ("sessions", "tariffs", "locations")

# A tariff or location push stored and answered 3000 (its broker did not take it) keeps the
# decision's 1000 with its object (migration 0014's check): it counts as accepted, as stored.
_COUNTS = """
SELECT 'sessions' AS module, count(*) AS received,
       count(*) FILTER (WHERE outcome = 'ACCEPTED') AS accepted,
       count(*) FILTER (WHERE outcome = 'REJECTED') AS refused
  FROM session_push
UNION ALL
SELECT module, count(*), count(*) FILTER (WHERE status_code = 1000),
       count(*) FILTER (WHERE status_code <> 1000)
  FROM ocpi_reference_receipt GROUP BY module
"""

_REFUSED = """
SELECT * FROM (
    SELECT 'sessions' AS module, push_id AS receipt_id, received_at, partner, method,
           concat_ws('/', url_country_code, url_party_id, url_session_id) AS object_path,
           http_status, status_code, reason_code, message, request_id, correlation_id
      FROM session_push WHERE outcome = 'REJECTED'
    UNION ALL
    SELECT module, receipt_id, received_at, partner, method, object_path, http_status,
           status_code, NULL, message, request_id, correlation_id
      FROM ocpi_reference_receipt WHERE status_code <> 1000
) refused
 WHERE (%(module)s::text IS NULL OR module = %(module)s)
   AND (%(partner)s::text IS NULL OR partner = %(partner)s)
 ORDER BY received_at DESC, module, receipt_id DESC
 LIMIT %(limit)s
"""


def counts(conn: psycopg.Connection[Row]) -> dict[str, dict[str, int]]:
    """Per module: received = accepted + refused (zeros for a module nobody pushed to)."""
    found = {m: {"received": 0, "accepted": 0, "refused": 0} for m in MODULES}
    for row in conn.execute(_COUNTS).fetchall():
        found[row["module"]] = {k: int(row[k]) for k in ("received", "accepted", "refused")}
    return found


def refused(
    conn: psycopg.Connection[Row],
    module: str | None = None,
    partner: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Refused pushes, newest first, with where they went, the answer and why."""
    assert module is None or module in MODULES
    return conn.execute(_REFUSED, {"module": module, "partner": partner, "limit": limit}).fetchall()
