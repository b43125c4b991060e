"""What partners sent to the OCPI tariffs and locations receivers, accepted or not
(migration 0014): every authenticated PUT, PATCH and DELETE, its body as received, the
X-Request-ID and X-Correlation-ID that came with it, and what the hub answered and why.

    record(conn, Receipt(partner=PartyRef.parse("NL*TNM"), module="tariffs", method="PUT",
                         object_path="NL/TNM/AC-1", request_id="r-1", correlation_id="c-1",
                         body=b"{...}", http_status=201, status_code=1000, message="Success",
                         object_key="NL*TNM*AC-1"))

A receipt is written in the same transaction as the version it produced, so an accepted
body and its version exist together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import psycopg

from schemas.hub.party import PartyRef
from settlement.store.clearing_rows import storable
from settlement.store.db import Row

OBJECT_PATH_CHARS_MAX: Final = 300
MESSAGE_CHARS_MAX: Final = 2000
RECEIPTS_LISTED_MAX: Final = 1000

_INSERT = """
INSERT INTO ocpi_reference_receipt (partner, module, method, object_path, request_id,
    correlation_id, body, body_truncated, http_status, status_code, message, object_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING receipt_id
"""


@dataclass(frozen=True, slots=True)
class Receipt:
    """One request as received and answered."""

    partner: PartyRef
    module: str  # tariffs, locations
    method: str  # PUT, PATCH, DELETE
    object_path: str  # the URL after the module: NL/TNM/LOC1/3256/1
    request_id: str
    correlation_id: str
    body: bytes | None  # None for a DELETE
    http_status: int
    status_code: int  # the OCPI status answered
    message: str
    object_key: str | None = None  # accepted: what it changed
    body_truncated: bool = False


def record(conn: psycopg.Connection[Row], receipt: Receipt) -> int:
    """Append the receipt; its id."""
    row = conn.execute(
        _INSERT,
        (
            str(receipt.partner),
            receipt.module,
            receipt.method,
            storable(receipt.object_path[:OBJECT_PATH_CHARS_MAX]),  # a URL may hold a NUL
            receipt.request_id,
            receipt.correlation_id,
            receipt.body,
            receipt.body_truncated,
            receipt.http_status,
            receipt.status_code,
            storable(receipt.message[:MESSAGE_CHARS_MAX]),
            receipt.object_key,
        ),
    ).fetchone()
    assert row is not None
    return int(row["receipt_id"])


def receipts(
    conn: psycopg.Connection[Row],
    partner: PartyRef | None = None,
    request_id: str | None = None,
    limit: int = RECEIPTS_LISTED_MAX,
) -> list[Row]:
    """Receipts, oldest first, of one partner and/or one request id."""
    return conn.execute(
        "SELECT * FROM ocpi_reference_receipt"
        " WHERE (%(partner)s::text IS NULL OR partner = %(partner)s)"
        " AND (%(request)s::text IS NULL OR request_id = %(request)s)"
        " ORDER BY receipt_id LIMIT %(limit)s",
        {
            "partner": None if partner is None else str(partner),
            "request": request_id,
            "limit": min(limit, RECEIPTS_LISTED_MAX),
        },
    ).fetchall()
