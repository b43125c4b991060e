"""CDRs received over OCPI HTTP in PostgreSQL (migration 0012): receipts, where the accepted
ones went on the topic, and the rejections at the door.

Every call takes a whole batch of requests (the receiver batches concurrent requests into
one round trip per step, pipeline/ocpi/cdr_ingest.py):

    claim(conn, receipts)           -> the receipt ids that became their key's ACCEPTED one
    accepted_of(conn, keys)         -> the ACCEPTED receipt of each key (and if published)
    record(conn, receipts)          -> DUPLICATE and REJECTED receipts (with rejection rows)
    record_published(conn, rows)    -> where the broker put each accepted record

and, for the Location GET, `accepted_body(conn, key)`: the CDR as received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from schemas.hub.party import PartyRef
from schemas.validation import Violation
from settlement.clearing.outcome import ClaimedCdrKey
from settlement.clearing.reasons import Reason, Stage
from settlement.store.clearing_rows import payload_text, storable, violations_jsonb
from settlement.store.db import Row


class Outcome(StrEnum):
    """What the door did with one received body."""

    ACCEPTED = "ACCEPTED"  # the key's first: its record goes to cdr.submitted
    DUPLICATE = "DUPLICATE"  # same key and content as an ACCEPTED receipt: same Location
    REJECTED = "REJECTED"  # refused at the door, with a rejection row (stage ingest)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    message: str
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True, slots=True)
class Receipt:
    """One authenticated request's body and what the door decided about it."""

    receipt_id: UUID
    partner: PartyRef  # the token's
    token_hash: str
    cdr_key: ClaimedCdrKey | None  # the key the body names (admitted: its CdrKey's text)
    body: bytes  # as received; empty when refused unread (too large)
    body_bytes: int  # its size as received or declared
    request_id: str
    correlation_id: str
    outcome: Outcome
    duplicate_of: UUID | None = None
    refusal: Refusal | None = None

    @property
    def body_hash(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def __post_init__(self) -> None:
        assert (self.outcome is Outcome.REJECTED) == (self.refusal is not None)
        assert (self.outcome is Outcome.DUPLICATE) == (self.duplicate_of is not None)


@dataclass(frozen=True, slots=True)
class AcceptedReceipt:
    receipt_id: UUID
    body: bytes
    body_hash: str
    published: bool  # a row in ocpi_cdr_published names it


@dataclass(frozen=True, slots=True)
class Published:
    receipt_id: UUID
    topic: str
    partition: int
    offset: int
    event_id: UUID


_COLUMNS: Final = (
    "receipt_id, partner, token_hash, cdr_key, body_hash, body, body_bytes, request_id, "
    "correlation_id, outcome, duplicate_of, rejection_id"
)
_WIDTH: Final = len(_COLUMNS.split(","))
_ONE_ACCEPTED: Final = "ON CONFLICT (cdr_key) WHERE outcome = 'ACCEPTED' DO NOTHING"


# Statements of the batch sizes seen lately, kept: the placeholders of a batch of 17 receipts
# and their positions took about 50 µs of CPU to build, every batch.
STATEMENTS_KEPT_MAX: Final = 128


@lru_cache(maxsize=STATEMENTS_KEPT_MAX)
def _rows(rows: int, width: int) -> str:
    """`($1, $2), ($3, $4)`: PostgreSQL's own placeholders, for a raw cursor."""
    return ", ".join(
        "(" + ", ".join(f"${row * width + column + 1}" for column in range(width)) + ")"
        for row in range(rows)
    )


@lru_cache(maxsize=STATEMENTS_KEPT_MAX)
def _insert(rows: int) -> str:
    """One multi-row INSERT through a raw cursor. The receiver writes one receipt per CDR:
    unnest over arrays cost about 120 µs of API CPU per receipt (psycopg adapts array elements
    one by one), and psycopg's `%s` placeholders are parsed anew for every such statement
    (it caches only short ones): about 1 ms per batch. Plain parameters with `$n`
    placeholders cost about 35 µs per receipt."""
    return f"INSERT INTO ocpi_cdr_receipt ({_COLUMNS}) VALUES {_rows(rows, _WIDTH)}"


async def _execute(
    conn: psycopg.AsyncConnection[Row], query: str, params: Sequence[Any]
) -> list[Row]:
    async with psycopg.AsyncRawCursor(conn, row_factory=dict_row) as cursor:
        await cursor.execute(query, params, prepare=False, binary=True)
        return await cursor.fetchall() if cursor.description else []


def _values(receipts: Sequence[Receipt], rejection_ids: Sequence[int | None]) -> list[Any]:
    values: list[Any] = []
    for receipt, rejection_id in zip(receipts, rejection_ids, strict=True):
        values += (
            receipt.receipt_id,
            str(receipt.partner),
            receipt.token_hash,
            None if receipt.cdr_key is None else storable(receipt.cdr_key),
            receipt.body_hash,
            receipt.body,
            receipt.body_bytes,
            receipt.request_id,
            receipt.correlation_id,
            receipt.outcome.value,
            receipt.duplicate_of,
            rejection_id,
        )
    return values


async def claim(conn: psycopg.AsyncConnection[Row], receipts: Sequence[Receipt]) -> set[UUID]:
    """Insert ACCEPTED receipts; returns those that became their key's accepted one (the
    others found a key accepted already, by an earlier request or another process)."""
    assert all(r.outcome is Outcome.ACCEPTED for r in receipts)
    if not receipts:
        return set()
    rows = await _execute(
        conn,
        f"{_insert(len(receipts))} {_ONE_ACCEPTED} RETURNING receipt_id",
        _values(receipts, [None] * len(receipts)),
    )
    return {row["receipt_id"] for row in rows}


async def accepted_of(
    conn: psycopg.AsyncConnection[Row], keys: Sequence[str]
) -> dict[str, AcceptedReceipt]:
    cursor = await conn.execute(
        "SELECT r.cdr_key, r.receipt_id, r.body, r.body_hash, EXISTS ("
        "  SELECT 1 FROM ocpi_cdr_published p WHERE p.receipt_id = r.receipt_id) AS published"
        " FROM ocpi_cdr_receipt r WHERE r.outcome = 'ACCEPTED' AND r.cdr_key = ANY(%s)",
        (list(keys),),
    )
    return {
        row["cdr_key"]: AcceptedReceipt(
            row["receipt_id"], bytes(row["body"]), row["body_hash"], row["published"]
        )
        for row in await cursor.fetchall()
    }


async def record(conn: psycopg.AsyncConnection[Row], receipts: Sequence[Receipt]) -> None:
    """Insert DUPLICATE and REJECTED receipts, each rejection with its `rejection` row (stage
    ingest, no archived record, the body as its payload), in one transaction."""
    assert all(r.outcome is not Outcome.ACCEPTED for r in receipts)
    if not receipts:
        return
    refused = [r for r in receipts if r.refusal is not None]
    async with conn.transaction():
        ids: list[int] = []
        if refused:
            cursor = await conn.execute(
                "SELECT nextval('rejection_rejection_id_seq') AS id FROM generate_series(1, %s)",
                (len(refused),),
            )
            ids = [row["id"] for row in await cursor.fetchall()]
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO rejection (rejection_id, archive_id, reason_code, stage, message,"
                    " violations, submitter, cdr_key, payload)"
                    " VALUES (%s, NULL, %s, %s, %s, %s, %s, %s, %s)",
                    [_rejection_row(i, r) for i, r in zip(ids, refused, strict=True)],
                )
        by_receipt = dict(zip((r.receipt_id for r in refused), ids, strict=True))
        await _execute(
            conn,
            _insert(len(receipts)),
            _values(receipts, [by_receipt.get(r.receipt_id) for r in receipts]),
        )


def _rejection_row(rejection_id: int, receipt: Receipt) -> tuple[Any, ...]:
    refusal = receipt.refusal
    assert refusal is not None
    return (
        rejection_id,
        str(refusal.reason),
        Stage.INGEST.value,
        storable(refusal.message),
        violations_jsonb(refusal.violations),
        str(receipt.partner),
        None if receipt.cdr_key is None else storable(receipt.cdr_key),
        storable(payload_text(receipt.body)),
    )


async def record_published(
    conn: psycopg.AsyncConnection[Row], published: Sequence[Published]
) -> None:
    if not published:
        return
    await _execute(
        conn,
        'INSERT INTO ocpi_cdr_published (receipt_id, topic, partition, "offset", event_id) '
        f"VALUES {_rows(len(published), 5)}",
        [v for p in published for v in (p.receipt_id, p.topic, p.partition, p.offset, p.event_id)],
    )


def accepted_body(conn: psycopg.Connection[Row], cdr_key: str) -> bytes | None:
    """The accepted CDR of this key as its partner sent it, or None."""
    row = conn.execute(
        "SELECT body FROM ocpi_cdr_receipt WHERE outcome = 'ACCEPTED' AND cdr_key = %s",
        (cdr_key,),
    ).fetchone()
    return None if row is None else bytes(row["body"])


def receipts_of_request(conn: psycopg.Connection[Row], request_id: str) -> list[Row]:
    """Every receipt a request id delivered, with its rejection and topic position (the
    audit trail a dispute starts from)."""
    return conn.execute(
        "SELECT r.receipt_id, r.partner, r.cdr_key, r.outcome, r.request_id, r.correlation_id,"
        " r.received_at, r.duplicate_of, j.reason_code, j.stage, j.message,"
        ' p.topic, p.partition, p."offset", p.event_id'
        " FROM ocpi_cdr_receipt r LEFT JOIN rejection j USING (rejection_id)"
        " LEFT JOIN ocpi_cdr_published p ON p.receipt_id = r.receipt_id"
        " WHERE r.request_id = %s ORDER BY r.received_at",
        (request_id,),
    ).fetchall()
