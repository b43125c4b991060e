"""Checksum v2 and the seal against PostgreSQL: a line in SQL, and stored rows as values.

``line_v2_sql`` is the SQL form of ``settlement.batches.checksum.line_v2`` (same fields, same
order, same text; a test holds the two equal and pins a digest), rendered from its field
table; ``posting_line_v1_sql`` the form of version 1's ``posting_line``. The closer
aggregates the line digests at close, ``verify`` aggregates them again from the ledger,
both with ``body_digest_sql`` (``settlement.batches.checksum.body_digest``):

    encode(sha256(convert_to(string_agg(<line digest>, chr(10) ORDER BY posting_id)
           FILTER (WHERE <member>), 'UTF8')), 'hex')

``stored_batch``, ``stored_seal`` and ``previous_batch`` read a settlement_batch row into the
values settlement.batches.seal checks; ``PREVIOUS_SQL`` is the lateral join that finds a
batch's predecessor in its key's chain (one probe of the unique key index).
"""

from __future__ import annotations

from typing import Final

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import TransactionId
from settlement.batches.checksum import (
    FIELD_SEPARATOR,
    LINE_SEPARATOR,
    LINE_V2_FIELDS,
    LINE_V2_FORMS,
    NULL_FIELD,
    POSTING_LINE_V1_FIELDS,
    FieldForm,
    StoredBatch,
)
from settlement.batches.model import BatchKey
from settlement.batches.seal import PreviousBatch, StoredSeal
from settlement.store.db import Row

assert "'" not in FIELD_SEPARATOR and len(LINE_SEPARATOR) == 1
_SQL_FIELD_SEPARATOR: Final = f"'{FIELD_SEPARATOR}'"
_UTC_TEXT: Final = "to_char(({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

# each field's text in SQL; {p} the posting, {t} the transaction, {late} the late condition
_LINE_V2_SQL: Final = {
    "posting_id": "{p}.posting_id::text",
    "transaction_id": "{p}.transaction_id::text",
    "kind": "{t}.kind",
    "cdr_key": "{t}.cdr_key",
    "cpo": "{t}.cpo",
    "emsp": "{t}.emsp",
    "session_start": _UTC_TEXT.format("{t}.session_start"),
    "session_end": _UTC_TEXT.format("{t}.session_end"),
    "location_id": "{t}.location_id",
    "energy_kwh": "{t}.energy_kwh::text",
    "amount_excl_vat": "{t}.amount_excl_vat::text",
    "amount_incl_vat": "{t}.amount_incl_vat::text",
    "fee": "{t}.fee::text",
    "side": "{p}.side",
    "amount": "{p}.amount::text",
    "late": "({late})::text",
    "vat_breakdown": "({t}.rating->'vat_breakdown')::text",
}
assert tuple(_LINE_V2_SQL) == LINE_V2_FIELDS, "SQL and Python lines differ"


def line_v2_sql(posting: str, transaction: str, late: str) -> str:
    """The v2 line of a posting as a SQL text expression (``LINE_V2_FORMS``). Only free text
    is written twice (length and text): a column read, while a number, a time or the jsonb
    is converted to text once."""
    parts = []
    for name, template in _LINE_V2_SQL.items():
        value = template.format(p=posting, t=transaction, late=late)
        if LINE_V2_FORMS[name] is FieldForm.TEXT:
            value = f"length({value}) || ':' || {value}"
        parts.append(f"coalesce({value}, '{NULL_FIELD}')")
    # concat_ws: one call for the whole line (a chain of || costs more); no NULL reaches it
    return f"concat_ws({_SQL_FIELD_SEPARATOR}, {', '.join(parts)})"


def line_digest_sql(posting: str, transaction: str, late: str) -> str:
    """sha256 hex of the v2 line (``settlement.batches.checksum.line_digest``)."""
    return f"encode(sha256(convert_to({line_v2_sql(posting, transaction, late)}, 'UTF8')), 'hex')"


def posting_line_v1_sql(posting: str) -> str:
    """``settlement.batches.checksum.posting_line`` of a ``ledger_posting`` row (its columns
    are NOT NULL, so ``||`` never meets a NULL)."""
    return f" || {_SQL_FIELD_SEPARATOR} || ".join(f"{posting}.{f}" for f in POSTING_LINE_V1_FIELDS)


def body_digest_sql(line: str, order_by: str, member: str) -> str:
    """``settlement.batches.checksum.body_digest`` as an aggregate: the digest of ``line``
    over the rows where ``member`` holds, joined in ``order_by`` order (NULL over none)."""
    lines = f"string_agg({line}, chr({ord(LINE_SEPARATOR)}) ORDER BY {order_by})"
    return f"encode(sha256(convert_to({lines} FILTER (WHERE {member}), 'UTF8')), 'hex')"


def batch_totals_sql(posting: str, late: str) -> str:
    """The totals a batch stores (and checksum v2 covers), over its member postings: count,
    late count, debit, credit and late net (credit - debit of the late ones). One form for
    the closer's aggregate and for ``verify``'s recomputation."""
    p = posting
    return f"""count(*) AS postings,
       count(*) FILTER (WHERE {late}) AS late_postings,
       coalesce(sum({p}.amount) FILTER (WHERE {p}.side = 'DEBIT'), 0) AS debit,
       coalesce(sum({p}.amount) FILTER (WHERE {p}.side = 'CREDIT'), 0) AS credit,
       coalesce(sum(CASE {p}.side WHEN 'CREDIT' THEN {p}.amount ELSE -{p}.amount END)
                FILTER (WHERE {late}), 0) AS late_net"""


PREVIOUS_SQL: Final = """
LEFT JOIN LATERAL (
    SELECT q.checksum_version AS previous_version, q.checksum AS previous_checksum,
           q.seal AS previous_seal
      FROM settlement_batch q
     WHERE q.account = {b}.account AND q.currency = {b}.currency
       AND q.period_kind = {b}.period_kind AND q.period_start < {b}.period_start
     ORDER BY q.period_start DESC LIMIT 1
) previous ON true
"""

FIRST_SEALED_SQL: Final = (
    "(SELECT min(batch_id) FROM settlement_batch WHERE checksum_version = 2) AS first_sealed_id"
)


def stored_batch(row: Row) -> StoredBatch:
    return StoredBatch(
        batch_id=row["batch_id"],
        key=BatchKey(row["account"], row["currency"], SettlementPeriod(row["period_kind"])),
        period_start=row["period_start"],
        period_end=row["period_end"],
        settlement_tz=row["settlement_tz"],
        watermark=row["watermark"],
        prior_watermark=row["prior_watermark"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        postings=row["postings"],
        late_postings=row["late_postings"],
        debit=row["debit_total"],
        credit=row["credit_total"],
        rounding=row["rounding"],
        late_net=row["late_net"],
        rounding_transaction_id=None
        if row["rounding_transaction_id"] is None
        else TransactionId(str(row["rounding_transaction_id"])),
    )


def stored_seal(row: Row) -> StoredSeal:
    return StoredSeal(
        row["checksum_version"], row["checksum"], row["seal"], row["seal_key_id"], row["seal_link"]
    )


def previous_batch(row: Row) -> PreviousBatch | None:
    """The predecessor columns of ``PREVIOUS_SQL`` (None: the key's first batch)."""
    if row["previous_version"] is None:
        return None
    return PreviousBatch(row["previous_version"], row["previous_checksum"], row["previous_seal"])
