"""Rows for the clearing tables, from clearing outcomes (column order of clearing_store)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID, SafeUUID

from psycopg.types.json import Jsonb

from schemas.validation import Violation
from settlement.clearing.outcome import Booked, Duplicate, Outcome, Rejected
from settlement.store.db import jsonb_exact

PAYLOAD_CHARS_MAX = 1_000_000  # a rejection keeps at most this much of the input


_set: Final = object.__setattr__  # UUID refuses its own __setattr__


def _uuid(text: str) -> UUID:
    """`UUID(text)` for a transaction id the ledger made (a uuid5's canonical text), without
    the parsing of every accepted spelling `UUID.__init__` does (a fifth of its cost)."""
    value = UUID.__new__(UUID)
    _set(value, "int", int(text.replace("-", ""), 16))
    _set(value, "is_safe", SafeUUID.unknown)
    return value


def transaction_row(booked: Booked, archive_id: int, booked_at: datetime) -> tuple[Any, ...]:
    """The ledger_transaction row of a booking."""
    entry, cdr = booked.entry, booked.cdr
    transaction, amounts = entry.transaction, entry.amounts
    return (
        _uuid(transaction.transaction_id),
        str(transaction.cdr_key),
        transaction.kind._value_,
        None if transaction.reverses is None else _uuid(transaction.reverses),
        transaction.content_hash,
        cdr.currency,
        str(booked.cpo),
        str(booked.emsp),
        cdr.start_date_time,
        cdr.end_date_time,
        cdr.cdr_location.id,
        cdr.total_energy,
        amounts.excl_vat,
        amounts.incl_vat,
        amounts.fee,
        jsonb_exact(entry.trace.as_json()),
        archive_id,
        booked_at,
    )


def posting_rows(booked: Booked) -> list[tuple[Any, ...]]:
    """The ledger_posting rows of a booking, in the settlement period of its entry."""
    entry = booked.entry
    tid = _uuid(entry.transaction.transaction_id)
    period, end = entry.settlement_period._value_, booked.cdr.end_date_time
    return [
        (tid, p.account, p.side._value_, p.amount, p.currency, end, period)
        for p in entry.transaction.postings
    ]


def outcome_row(
    archive_id: int, outcome: Outcome, rejection_id: int | None, proof: str | None
) -> tuple[Any, ...]:
    """The cdr_outcome row of one record (`rejection_id`: its rejection row's, for a
    rejection; `proof`: the key that proved its submitter)."""
    transaction_id = None
    if isinstance(outcome, Booked):
        transaction_id = UUID(outcome.transaction.transaction_id)
    elif isinstance(outcome, Duplicate):
        transaction_id = UUID(outcome.transaction_id)
    else:
        assert rejection_id is not None, "a rejection has its rejection row"
    return (archive_id, outcome.outcome_kind.value, transaction_id, rejection_id, proof)


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
        None if rejected.submitter is None else str(rejected.submitter),
        None if rejected.cdr_key is None else storable(rejected.cdr_key),
        storable(payload_text(value)),
    )
