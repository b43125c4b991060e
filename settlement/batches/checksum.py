"""A batch's checksum: sha256 over what a closed batch holds, in two versions.

Version 1 (batches closed before migration 0007): sha256 over the batch's key, period,
watermarks and member postings. Computed in two steps so PostgreSQL can do the heavy part in
one ordered aggregate at close:

1. ``body``: sha256 hex of the batch's regular (non-rounding) postings, one line each,
   ``posting_id|transaction_id|side|amount`` (amount as stored, 4 decimals), joined by
   newlines in posting_id order (SQL: ``sha256(convert_to(string_agg(… ORDER BY posting_id),
   'UTF8'))``).
2. the checksum: sha256 hex of the header line, the body digest and the rounding line::

       partner:NL*TNM|EUR|MONTHLY|2025-05-01T00:00:00+00:00|2025-06-01T00:00:00+00:00|1200|0
       <body digest>
       rounding|<transaction id>|CREDIT|0.0044        (or "rounding|-" when there is none)

Version 1 covers neither the transactions' figures (gross, VAT, fee, counterparty) nor the
stored totals, and anyone can recompute it: it proves membership, not the statement.

Version 2 (every batch closed since 0007) covers every figure a statement shows:

- each member posting is one ``LedgerLine`` (posting id, transaction id, kind, CDR key, CPO,
  eMSP, session start and end, location, energy, amounts excl. and incl. VAT, fee, side,
  booked amount, late flag, and the VAT breakdown as PostgreSQL prints the jsonb), fields
  joined by ``|``. Free text (kind, CDR key, CPO, eMSP, location, side) is written
  ``<length>:<text>``, so no text a partner sent can shift one field into the next; numbers,
  times, ids and the flag are written plain (their text never holds a ``|``); the VAT
  breakdown comes last, as it is. NULL is ``~``. Times are UTC with microseconds
  (``2025-05-10T11:15:00.000000Z``), numbers in plain notation as PostgreSQL prints them.
  (Prefixing every field, or quoting, was measured: converting numbers, times and the jsonb
  to text twice made a 1M-posting close 1.5x slower; docs/settlement.md, "Performance");
- ``body``: sha256 hex of the lines' own sha256 hex digests joined by newlines, in posting_id
  order (a digest per line keeps the aggregate's text at 65 bytes per posting, whatever the
  length of a location id or a VAT breakdown); the rounding posting is left out of it and
  gets its own line digest (``-`` when there is none): PostgreSQL computes the body in the
  close's aggregate, before the rounding postings exist;
- the checksum: sha256 hex of ``CHECKSUM_V2_LABEL``, the header line (batch id, key, period,
  zone, watermarks, created and closed times), the totals line (postings, late postings,
  debit, credit, rounding, late net, net, rounding transaction), the body and the rounding
  digest, one per line.

The SQL form of a line is ``settlement.store.sealing.line_v2_sql``; a test holds the two
equal and pins a digest. The checksum is still unkeyed: what stops a rewrite is the seal over
it (settlement.batches.seal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final

from schemas.hub.ledger import TransactionId
from settlement.batches.model import BatchKey
from settlement.money import round_posting

CHECKSUM_V1: Final = 1
CHECKSUM_V2: Final = 2
CHECKSUM_V2_LABEL: Final = "roamclear statement checksum v2"
NULL_FIELD: Final = "~"
NO_ROUNDING: Final = "-"
FIELD_SEPARATOR: Final = "|"
LINE_SEPARATOR: Final = "\n"
POSTING_LINE_V1_FIELDS: Final = ("posting_id", "transaction_id", "side", "amount")
"""The columns of a version 1 line, in order (SQL: ``settlement.store.sealing``)."""


def posting_line(posting_id: int, transaction_id: str, side: str, amount: Decimal) -> str:
    """One posting as checksummed in version 1 (``POSTING_LINE_V1_FIELDS``)."""
    return FIELD_SEPARATOR.join(map(str, (posting_id, transaction_id, side, amount)))


def body_digest(lines: Iterable[str]) -> str:
    """sha256 hex of the lines joined by newlines (lines already in posting_id order);
    SQL: ``settlement.store.sealing.body_digest_sql``."""
    return hashlib.sha256(LINE_SEPARATOR.join(lines).encode()).hexdigest()


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


# -- version 2 ---------------------------------------------------------------------------

FieldValue = str | int | bool | Decimal | datetime | None


class FieldForm(StrEnum):
    """How a field is written into a line (NULL is ``~`` in every form)."""

    PLAIN = "PLAIN"  # a number, a time, a uuid, a flag: its text never holds a "|"
    TEXT = "TEXT"  # free text: ``<length>:<text>``, so no "|" in it can shift a field
    REST = "REST"  # the last field, as it is: the rest of the line


def utc_text(moment: datetime) -> str:
    """A time as checksummed: UTC, microseconds, ``Z`` (SQL: ``to_char(… AT TIME ZONE 'UTC',
    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def field_text(value: FieldValue, form: FieldForm = FieldForm.PLAIN) -> str:
    """One field in its form. Plain text is what PostgreSQL prints: numbers in plain
    notation, times by ``utc_text``, flags ``true``/``false``."""
    if value is None:
        return NULL_FIELD
    if isinstance(value, bool):  # before int: bool is an int
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = utc_text(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")  # plain notation, as PostgreSQL prints numeric
    else:
        text = str(value)
    return f"{len(text)}:{text}" if form is FieldForm.TEXT else text


def fields_text(values: Iterable[tuple[FieldValue, FieldForm]]) -> str:
    """The fields joined by ``|``; only the last may be ``REST``."""
    return FIELD_SEPARATOR.join(field_text(value, form) for value, form in values)


def ledger_amount(amount: Decimal) -> str:
    """A stored amount (numeric(20,4)) as text with its 4 decimals, whatever scale the
    Decimal in hand has (a ``sum`` over no rows is ``0``, the column says ``0.0000``)."""
    exact = round_posting(amount)  # half-up to 4 decimals; asserted exact below
    assert exact == amount, ("a stored amount has at most 4 decimals", amount)
    # PostgreSQL has no negative zero; Decimal arithmetic can make one (-0.0000)
    return format(exact.copy_abs() if exact == 0 else exact, "f")


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One member posting with its transaction's facts: every figure a statement line shows
    (role, counterparty, fee paid and net follow from these)."""

    posting_id: int
    transaction_id: str
    kind: str
    cdr_key: str
    cpo: str
    emsp: str
    session_start: datetime
    session_end: datetime
    location_id: str | None
    energy_kwh: Decimal
    amount_excl_vat: Decimal  # as stored on the transaction (unsigned)
    amount_incl_vat: Decimal
    fee: Decimal
    side: str
    amount: Decimal
    late: bool
    vat_breakdown: str | None  # rating->'vat_breakdown' as PostgreSQL prints the jsonb


_P, _T, _R = FieldForm.PLAIN, FieldForm.TEXT, FieldForm.REST
LINE_V2_FORMS: Final = {
    "posting_id": _P,
    "transaction_id": _P,
    "kind": _T,
    "cdr_key": _T,
    "cpo": _T,
    "emsp": _T,
    "session_start": _P,
    "session_end": _P,
    "location_id": _T,
    "energy_kwh": _P,
    "amount_excl_vat": _P,
    "amount_incl_vat": _P,
    "fee": _P,
    "side": _T,
    "amount": _P,
    "late": _P,
    "vat_breakdown": _R,
}
LINE_V2_FIELDS: Final = tuple(f.name for f in fields(LedgerLine))
assert tuple(LINE_V2_FORMS) == LINE_V2_FIELDS, "every line field has a form, in order"


def line_v2(line: LedgerLine) -> str:
    return fields_text((getattr(line, name), form) for name, form in LINE_V2_FORMS.items())


def line_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def body_v2(lines: Iterable[LedgerLine]) -> str:
    """The body of checksum v2 over the regular lines, already in posting_id order."""
    return body_digest(line_digest(line_v2(line)) for line in lines)


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """A closed batch's row as the closer stores it: the header and totals that checksum v2
    and the seal cover."""

    batch_id: int
    key: BatchKey
    period_start: datetime
    period_end: datetime
    settlement_tz: str
    watermark: int
    prior_watermark: int
    created_at: datetime
    closed_at: datetime
    postings: int
    late_postings: int
    debit: Decimal
    credit: Decimal
    rounding: Decimal  # signed, + credited to the partner
    late_net: Decimal
    rounding_transaction_id: TransactionId | None

    @property
    def net(self) -> Decimal:
        return self.credit - self.debit

    def header_line(self) -> str:
        return fields_text(
            (
                (self.batch_id, _P),
                (self.key.account, _T),
                (self.key.currency, _T),
                (self.key.period_kind.value, _T),
                (self.period_start, _P),
                (self.period_end, _P),
                (self.settlement_tz, _T),
                (self.watermark, _P),
                (self.prior_watermark, _P),
                (self.created_at, _P),
                (self.closed_at, _P),
            )
        )

    def totals_line(self) -> str:
        return fields_text(
            (
                (self.postings, _P),
                (self.late_postings, _P),
                (ledger_amount(self.debit), _P),
                (ledger_amount(self.credit), _P),
                (ledger_amount(self.rounding), _P),
                (ledger_amount(self.late_net), _P),
                (ledger_amount(self.net), _P),
                (self.rounding_transaction_id, _P),
            )
        )


def batch_checksum_v2(batch: StoredBatch, body: str, rounding_digest: str) -> str:
    """sha256 hex of label, header, totals, body and the rounding line's digest (or ``-``)."""
    text = "\n".join(
        (CHECKSUM_V2_LABEL, batch.header_line(), batch.totals_line(), body, rounding_digest)
    )
    return hashlib.sha256(text.encode()).hexdigest()
