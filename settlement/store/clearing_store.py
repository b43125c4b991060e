"""The clearing agent's writes: archive, look-ups and bookings, batched and idempotent.

One PostgreSQL transaction per consumed batch: the raw events are archived (a redelivered
record finds its position taken and is skipped), then every new event gets exactly one
outcome row (ledgered, rejected or duplicate) together with its transaction and postings or
its rejection. Bulk rows go through COPY into temporary tables and `INSERT … SELECT … ON
CONFLICT DO NOTHING`, so a CDR booked concurrently by another worker (a partner that keyed
it badly) loses cleanly to PostgreSQL's constraints instead of failing the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from schemas.hub.ledger import Posting, Side, TransactionId, TransactionKind
from schemas.hub.party import CdrKey
from settlement.clearing.entry import Amounts, Booking
from settlement.clearing.trace import ChargeTrace
from settlement.store.db import Row

_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS raw_event_in (
    topic text, partition integer, "offset" bigint, broker_timestamp timestamptz,
    key bytea, value bytea, headers jsonb) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ledger_transaction_in (LIKE ledger_transaction)
    ON COMMIT DELETE ROWS;
"""
_ARCHIVE = """
INSERT INTO raw_event (topic, partition, "offset", broker_timestamp, key, value, headers)
SELECT topic, partition, "offset", broker_timestamp, key, value, headers FROM raw_event_in
ON CONFLICT (topic, partition, "offset") DO NOTHING
RETURNING archive_id, partition, "offset"
"""
_BOOKINGS = """
SELECT t.cdr_key, t.transaction_id, t.content_hash, t.kind, r.transaction_id AS reversed_by,
       t.amount_excl_vat, t.amount_incl_vat, t.fee, t.rating
  FROM ledger_transaction t
  LEFT JOIN ledger_transaction r ON r.reverses = t.transaction_id
 WHERE t.cdr_key = ANY(%s)
"""
BOOKING_POSTINGS = """
SELECT transaction_id, account, side, amount, currency FROM ledger_posting
 WHERE transaction_id = ANY(%s) ORDER BY posting_id
"""
TRANSACTION_COLUMNS = (
    "transaction_id",
    "cdr_key",
    "kind",
    "reverses",
    "content_hash",
    "currency",
    "cpo",
    "emsp",
    "session_start",
    "session_end",
    "location_id",
    "energy_kwh",
    "amount_excl_vat",
    "amount_incl_vat",
    "fee",
    "rating",
    "archive_id",
    "booked_at",
)
_BOOK = """
INSERT INTO ledger_transaction SELECT * FROM ledger_transaction_in
ON CONFLICT DO NOTHING RETURNING transaction_id
"""
POSTING_COLUMNS = (
    "transaction_id",
    "account",
    "side",
    "amount",
    "currency",
    "value_time",
    "settlement_period",
)
REJECTION_COLUMNS = (
    "rejection_id",
    "archive_id",
    "reason_code",
    "stage",
    "message",
    "violations",
    "submitter",
    "cdr_key",
    "payload",
)
OUTCOME_COLUMNS = ("archive_id", "outcome", "transaction_id", "rejection_id", "proof")
_ARCHIVE_COLUMNS = (
    "topic",
    "partition",
    '"offset"',
    "broker_timestamp",
    "key",
    "value",
    "headers",
)


@dataclass(frozen=True, slots=True)
class SubmittedRecord:
    """A consumed cdr.submitted record and where the broker put it.

    `unreadable` says why the Kafka client could not read the record (None for a normal
    one); then `value` holds whatever raw bytes exist for it (its own value, or the raw
    bytes of its whole batch), and `key` and `headers` what could be read. A header name
    that is not UTF-8 is kept as surrogate escapes (`b"\\xff"` as "\\udcff")."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    unreadable: str | None = None

    @property
    def position(self) -> tuple[int, int]:
        return (self.partition, self.offset)


async def prepare(conn: psycopg.AsyncConnection[Row]) -> None:
    await conn.execute(_TEMP_TABLES)
    await conn.commit()


def _timestamp(ms: int | None) -> datetime | None:
    """The broker timestamp; None when absent or outside the calendar (a producer sets
    CreateTime, and Tansu, like Kafka by default, accepts year 10000)."""
    if ms is None or ms < 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _headers(headers: Iterable[tuple[str, bytes | None]]) -> Jsonb:
    """Headers as JSON pairs, values in hex (a header value may be null); a name that is not
    UTF-8 (surrogate escapes) as {"hex": its bytes in hex}, so the bytes survive. Wrapped as
    Jsonb: a str sent by binary COPY is stored as one JSON string, not as the pairs."""
    return Jsonb(
        [[_header_name(name), None if value is None else value.hex()] for name, value in headers]
    )


def _header_name(name: str) -> str | dict[str, str]:
    try:
        name.encode()
        return name
    except UnicodeEncodeError:
        pass
    try:
        return {"hex": name.encode("utf-8", "surrogateescape").hex()}
    except UnicodeEncodeError:  # a surrogate no bytes were escaped as: its UTF-16 code
        return {"hex": name.encode("utf-8", "surrogatepass").hex()}


async def archive(
    conn: psycopg.AsyncConnection[Row], records: Sequence[SubmittedRecord]
) -> dict[tuple[int, int], int]:
    """Archive the records; returns archive ids of the ones not archived before.

    First one COPY straight into raw_event with ids drawn from its sequence, inside a
    savepoint; when a position is archived already (a redelivery after a crash or a
    rebalance) that COPY fails as a whole and the records go through a temporary table and
    `ON CONFLICT DO NOTHING` instead. The direct COPY writes each payload once instead of
    twice, which is most of what archiving costs PostgreSQL.
    """
    rows = [
        (
            r.topic,
            r.partition,
            r.offset,
            _timestamp(r.timestamp_ms),
            r.key,
            r.value,
            _headers(r.headers),
        )
        for r in records
    ]
    ids = await next_ids(conn, "raw_event_archive_id_seq", len(rows))
    try:
        async with conn.transaction():
            await copy_rows(
                conn,
                "raw_event",
                ("archive_id", *_ARCHIVE_COLUMNS),
                ((archive_id, *row) for archive_id, row in zip(ids, rows, strict=True)),
            )
        return {r.position: archive_id for r, archive_id in zip(records, ids, strict=True)}
    except psycopg.errors.UniqueViolation:
        pass
    await copy_rows(conn, "raw_event_in", _ARCHIVE_COLUMNS, rows)
    archived = await (await conn.cursor().execute(_ARCHIVE)).fetchall()
    return {(row["partition"], row["offset"]): row["archive_id"] for row in archived}


async def bookings(
    conn: psycopg.AsyncConnection[Row], cdr_keys: Iterable[CdrKey]
) -> dict[CdrKey, Booking]:
    """What the ledger holds for these CDR keys (postings, amounts and a charge's rating
    record included, for reversals); a key not booked is absent."""
    asked = {str(key): key for key in cdr_keys}
    if not asked:
        return {}
    rows = await (await conn.execute(_BOOKINGS, (sorted(asked),))).fetchall()
    if not rows:
        return {}
    ids = [row["transaction_id"] for row in rows]
    postings = await (await conn.execute(BOOKING_POSTINGS, (ids,))).fetchall()
    return stored_bookings(asked, rows, postings)


def stored_bookings(
    asked: dict[str, CdrKey], rows: list[Row], postings: list[Row]
) -> dict[CdrKey, Booking]:
    """`_BOOKINGS`-shaped rows and their `BOOKING_POSTINGS` rows as the decision reads them,
    by the key asked for (`asked`: each key's text → the key)."""
    by_transaction: dict[UUID, list[Posting]] = {row["transaction_id"]: [] for row in rows}
    for p in postings:
        by_transaction[p["transaction_id"]].append(
            Posting.model_construct(
                account=p["account"],
                side=Side(p["side"]),
                amount=p["amount"],
                currency=p["currency"],
            )
        )
    return {
        asked[row["cdr_key"]]: stored_booking(row, tuple(by_transaction[row["transaction_id"]]))
        for row in rows
    }


def stored_booking(row: Row, postings: tuple[Posting, ...]) -> Booking:
    """A ledger_transaction row (as `_BOOKINGS` selects it) as the clearing decision reads
    it."""
    kind = TransactionKind(row["kind"])
    return Booking(
        transaction_id=TransactionId(str(row["transaction_id"])),
        content_hash=row["content_hash"],
        kind=kind,
        reversed_by=None if row["reversed_by"] is None else TransactionId(str(row["reversed_by"])),
        postings=postings,
        amounts=Amounts(row["amount_excl_vat"], row["amount_incl_vat"], row["fee"]),
        trace=_charge_trace(row["rating"]) if kind is TransactionKind.CHARGE else None,
    )


def _charge_trace(rating: Any) -> ChargeTrace | None:
    """A stored charge's record; None when clearing did not write it (rows made by hand or
    by tests' factories hold only part of it): reversing such a charge is then the hub's
    internal error on that one credit, not a failed batch."""
    try:
        return ChargeTrace.from_json(rating)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


async def book(
    conn: psycopg.AsyncConnection[Row],
    transactions: Sequence[tuple[Any, ...]],
    postings_by_transaction: dict[TransactionId, list[tuple[Any, ...]]],
) -> set[TransactionId]:
    """Insert transactions (conflicts skipped) and the postings of those inserted."""
    if not transactions:
        return set()
    await copy_rows(conn, "ledger_transaction_in", TRANSACTION_COLUMNS, transactions)
    cursor = conn.cursor()
    rows = await (await cursor.execute(_BOOK)).fetchall()
    inserted = {TransactionId(str(row["transaction_id"])) for row in rows}
    await copy_rows(
        conn,
        "ledger_posting",
        POSTING_COLUMNS,
        (
            row
            for transaction_id in inserted
            for row in postings_by_transaction.get(transaction_id, ())
        ),
    )
    return inserted


async def next_ids(conn: psycopg.AsyncConnection[Row], sequence: str, count: int) -> list[int]:
    """`count` values of a sequence in one round trip."""
    if count == 0:
        return []
    rows = await (
        await conn.execute(
            "SELECT nextval(%s) AS id FROM generate_series(1, %s)", (sequence, count)
        )
    ).fetchall()
    return [row["id"] for row in rows]


async def copy_rows(
    conn: psycopg.AsyncConnection[Row],
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    """COPY rows in PostgreSQL's binary format: a third of the text format's CPU on both
    sides for the archive's payloads (bytea travels as bytes, not as hex text)."""
    types = await _column_types(conn, table, tuple(columns))
    cursor = conn.cursor()
    async with cursor.copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)


# Type oids of the copied columns, asked of the catalogue once per table and column list.
# Only built-in types are cached: their oids are the same in every database.
_COLUMN_TYPES: dict[tuple[str, tuple[str, ...]], list[int]] = {}
_FIRST_USER_OID = 16384
# char(n) has no binary dumper in psycopg; its binary wire format is text's
_BINARY_AS = {1042: 25}


async def _column_types(
    conn: psycopg.AsyncConnection[Row], table: str, columns: tuple[str, ...]
) -> list[int]:
    cached = _COLUMN_TYPES.get((table, columns))
    if cached is not None:
        return cached
    rows = await (
        await conn.execute(
            "SELECT attname, atttypid::int AS oid FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
    ).fetchall()
    oids = {row["attname"]: row["oid"] for row in rows}
    names = [column.strip('"') for column in columns]  # "offset" is quoted in SQL
    missing = [name for name in names if name not in oids]
    if missing:
        raise LookupError(f"table {table} has no column(s) {', '.join(missing)}")
    types = [_BINARY_AS.get(oids[name], oids[name]) for name in names]
    if all(oid < _FIRST_USER_OID for oid in types):
        _COLUMN_TYPES[(table, columns)] = types
    return types
