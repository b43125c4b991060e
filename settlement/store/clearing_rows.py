"""Rows for the clearing tables, from clearing outcomes (column order of clearing_store)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from schemas.hub.ledger import TransactionKind
from schemas.validation import Violation
from settlement.clearing.outcome import Booked, Rejected
from settlement.clearing.summary import booking_summary, reversal_summary
from settlement.store.db import jsonb_exact

PAYLOAD_CHARS_MAX = 1_000_000  # a rejection keeps at most this much of the input


def transaction_row(
    booked: Booked, archive_id: int, booked_at: datetime, original: Mapping[str, Any] | None
) -> tuple[Any, ...]:
    """A ledger_transaction row; a reversal needs its original's row (amounts, rating)."""
    transaction, cdr = booked.transaction, booked.cdr
    if transaction.kind is TransactionKind.CHARGE:
        allocation = booked.allocation
        assert allocation is not None
        amounts = (allocation.amount_excl_vat, allocation.amount_incl_vat, allocation.fee)
        summary = booking_summary(booked)
    else:
        assert original is not None and transaction.reverses is not None
        amounts = (-original["amount_excl_vat"], -original["amount_incl_vat"], -original["fee"])
        summary = reversal_summary(original["rating"], transaction.reverses)
    return (
        UUID(transaction.transaction_id),
        str(transaction.cdr_key),
        transaction.kind.value,
        None if transaction.reverses is None else UUID(transaction.reverses),
        transaction.content_hash,
        cdr.currency,
        booked.cpo,
        booked.emsp,
        cdr.start_date_time,
        cdr.end_date_time,
        cdr.cdr_location.id,
        cdr.total_energy,
        *amounts,
        jsonb_exact(summary),
        archive_id,
        booked_at,
    )


def posting_rows(booked: Booked, settlement_period: str) -> list[tuple[Any, ...]]:
    transaction = booked.transaction
    tid = UUID(transaction.transaction_id)
    return [
        (
            tid,
            p.account,
            p.side.value,
            p.amount,
            p.currency,
            booked.cdr.end_date_time,
            settlement_period,
        )
        for p in transaction.postings
    ]


def storable(text: str) -> str:
    """`text` as PostgreSQL can store it: its text and jsonb types refuse U+0000, so a NUL
    a partner sent becomes U+FFFD (a rejection that cannot be stored would fail its whole
    batch on every redelivery)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def violations_jsonb(violations: tuple[Violation, ...]) -> Jsonb:
    return Jsonb(
        [
            {"path": storable(v.path), "rule": storable(v.rule), "code": storable(v.code)}
            for v in violations
        ]
    )


def payload_text(value: bytes | None) -> str:
    """The original value as text: exact for UTF-8, replacement characters otherwise."""
    if value is None:
        return ""
    return value.decode("utf-8", errors="replace")[:PAYLOAD_CHARS_MAX]


def rejection_row(
    rejection_id: int, archive_id: int, rejected: Rejected, value: bytes | None
) -> tuple[Any, ...]:
    return (
        rejection_id,
        archive_id,
        str(rejected.reason),
        rejected.stage.value,
        storable(rejected.message),
        violations_jsonb(rejected.violations),
        None if rejected.submitter is None else storable(rejected.submitter),
        None if rejected.cdr_key is None else storable(rejected.cdr_key),
        storable(payload_text(value)),
    )
