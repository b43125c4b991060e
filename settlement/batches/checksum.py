"""A batch's checksum: sha256 over its key, period, watermarks and member postings.

Computed in two steps so PostgreSQL can do the heavy part in one ordered aggregate at close:

1. ``body``: sha256 hex of the batch's regular (non-rounding) postings, one line each,
   ``posting_id|transaction_id|side|amount`` (amount as stored, 4 decimals), joined by
   newlines in posting_id order (SQL: ``sha256(convert_to(string_agg(… ORDER BY posting_id),
   'UTF8'))``).
2. the checksum: sha256 hex of the header line, the body digest and the rounding line::

       partner:NL*TNM|EUR|MONTHLY|2025-05-01T00:00:00+00:00|2025-06-01T00:00:00+00:00|1200|0
       <body digest>
       rounding|<transaction id>|CREDIT|0.0044        (or "rounding|-" when there is none)

Anyone holding the ledger can recompute it (``roamclear statements verify``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from settlement.batches.model import BatchKey


def posting_line(posting_id: int, transaction_id: str, side: str, amount: Decimal) -> str:
    """One posting as checksummed (must match the SQL expression in settlement.store)."""
    return f"{posting_id}|{transaction_id}|{side}|{amount}"


def body_digest(lines: Iterable[str]) -> str:
    """sha256 hex of the lines joined by newlines (lines already in posting_id order)."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def rounding_line(transaction_id: str | None, side: str | None, amount: Decimal | None) -> str:
    if transaction_id is None:
        return "rounding|-"
    return f"rounding|{transaction_id}|{side}|{amount}"


def batch_checksum(
    key: BatchKey,
    period_start: datetime,
    period_end: datetime,
    watermark: int,
    prior_watermark: int,
    body: str,
    rounding: str,
) -> str:
    header = "|".join(
        (
            key.account,
            key.currency,
            key.period_kind.value,
            period_start.astimezone(UTC).isoformat(),
            period_end.astimezone(UTC).isoformat(),
            str(watermark),
            str(prior_watermark),
        )
    )
    return hashlib.sha256(f"{header}\n{body}\n{rounding}".encode()).hexdigest()
