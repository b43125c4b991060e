"""Statements from PostgreSQL: list closed batches, load one with its lines, verify it.

A batch's lines are its member postings (SQL function ``settlement_batch_postings``, the
membership rule of migration 0003) joined with their ledger transactions. VAT comes from
``ledger_transaction.rating->'vat_breakdown'``: a list of
``{"vat": "21.0", "excl_vat": "8.2645", "incl_vat": "10.0000"}`` (amounts as JSON strings
or numbers); when absent, the line counts under an unknown rate with its own amounts.

``verify`` recomputes a batch's totals and checksum from the ledger, checks its seal and its
link to the key's previous batch, and lists every difference with what was stored (an empty
list: the statement still matches). Batches closed before sealing (checksum v1) are checked
against the ledger as before and reported unsealed. ``list_statements`` checks each row's
seal against the stored row alone (no ledger scan): cheap enough for every listing.

Statements show the stored figures (``with_stored_totals``): what was closed and sealed,
whatever the ledger says now; ``verify`` says where the two differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg.rows import tuple_row

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.batch import BatchState
from schemas.hub.ledger import Side, TransactionId, TransactionKind
from settlement.batches.checksum import (
    CHECKSUM_V1,
    NO_ROUNDING,
    batch_checksum,
    batch_checksum_v2,
    body_digest,
    rounding_line,
)
from settlement.batches.model import BatchKey
from settlement.batches.periods import utc_unless_offset
from settlement.batches.seal import SealKeys, SealStatus, check_seal
from settlement.money import round_minor_unit
from settlement.statements.build import (
    build_statement,
    role_of,
    roles_of,
    vat_parts,
    with_stored_totals,
)
from settlement.statements.model import (
    LineRole,
    Statement,
    StatementHeader,
    StatementLine,
    StoredTotals,
)
from settlement.store.db import Row
from settlement.store.sealing import (
    FIRST_SEALED_SQL,
    PREVIOUS_SQL,
    batch_totals_sql,
    body_digest_sql,
    line_digest_sql,
    posting_line_v1_sql,
    previous_batch,
    stored_batch,
    stored_seal,
)

LIST_PAGE_DEFAULT: Final = 100
LIST_PAGE_MAX: Final = 1_000
"""A list answers at most this many statements at once; ``iter_statements`` pages on."""
LIST_OFFSET_MAX: Final = 1_000_000_000
LINES_FETCH_ROWS: Final = 20_000

_LINES = """
SELECT p.posting_id, p.transaction_id::text, t.kind, t.cdr_key, t.cpo, t.emsp,
       t.session_start, t.session_end, t.location_id, t.energy_kwh, t.amount_excl_vat,
       t.amount_incl_vat, t.fee, p.side, p.amount, p.value_time < b.period_start AS late,
       t.rating->'vat_breakdown' AS vat
  FROM settlement_batch b
 CROSS JOIN LATERAL settlement_batch_postings(b) p
  JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
 WHERE b.batch_id = %s
 ORDER BY p.posting_id
"""

_LATE = "p.value_time < b.period_start"  # a member posting of an earlier period
_IS_ROUNDING = "p.transaction_id = b.rounding_transaction_id"

_RECOMPUTE_V1 = f"""
SELECT {batch_totals_sql("p", _LATE)},
       {body_digest_sql(posting_line_v1_sql("p"), "p.posting_id", f"({_IS_ROUNDING}) IS NOT TRUE")}
           AS body,
       count(*) FILTER (WHERE {_IS_ROUNDING}) AS rounding_legs,
       min(p.side) FILTER (WHERE {_IS_ROUNDING}) AS rounding_side,
       min(p.amount) FILTER (WHERE {_IS_ROUNDING}) AS rounding_amount
  FROM settlement_batch b
 CROSS JOIN LATERAL settlement_batch_postings(b) p
 WHERE b.batch_id = %s
"""


_LINE_DIGEST = line_digest_sql("p", "t", _LATE)

# a transaction row gone missing leaves NULL fields in its line: the digest differs
_RECOMPUTE_V2 = f"""
SELECT {batch_totals_sql("p", _LATE)},
       {body_digest_sql(_LINE_DIGEST, "p.posting_id", f"({_IS_ROUNDING}) IS NOT TRUE")} AS body,
       count(*) FILTER (WHERE {_IS_ROUNDING}) AS rounding_legs,
       min({_LINE_DIGEST}) FILTER (WHERE {_IS_ROUNDING}) AS rounding_digest
  FROM settlement_batch b
 CROSS JOIN LATERAL settlement_batch_postings(b) p
  LEFT JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
 WHERE b.batch_id = %s
"""

# a closed batch with what its seal check needs: the key's previous batch, the first sealed
_SEALED_ROW = f"""
SELECT b.*, previous.*, {FIRST_SEALED_SQL}
  FROM settlement_batch b
{PREVIOUS_SQL.format(b="b")}
"""


class StatementNotFound(Exception):
    """No closed batch has this id. List them with ``roamclear statements list``."""


@dataclass(frozen=True, slots=True)
class StatementSummary:
    """One row of ``statements list``."""

    batch_id: int
    partner: str
    currency: str
    period_kind: SettlementPeriod
    period_start: datetime
    period_end: datetime
    net_amount: Decimal
    postings: int
    late_postings: int
    rounding: Decimal
    checksum: str
    closed_at: datetime
    checksum_version: int
    seal_status: SealStatus  # from the stored row alone; ``verify`` reads the ledger too
    seal_key_id: str | None

    def json(self) -> dict[str, Any]:
        return {
            "id": self.batch_id,
            "partner": self.partner,
            "currency": self.currency,
            "period_kind": self.period_kind.value,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "net_amount": str(self.net_amount),
            "postings": self.postings,
            "late_postings": self.late_postings,
            "rounding": str(self.rounding),
            "checksum": self.checksum,
            "checksum_version": self.checksum_version,
            "seal_status": self.seal_status.value,
            "seal_key_id": self.seal_key_id,
            "closed_at": self.closed_at.isoformat(),
        }


_WHERE = """
 WHERE b.state = 'CLOSED'
   AND (%(partner)s::text IS NULL OR b.partner = %(partner)s)
   AND (%(from)s::timestamptz IS NULL OR b.period_end > %(from)s)
   AND (%(to)s::timestamptz IS NULL OR b.period_start < %(to)s)
"""


@dataclass(frozen=True, slots=True)
class StatementPage:
    """One page of a listing and how many statements the whole listing holds."""

    items: tuple[StatementSummary, ...]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts; None when this page is the last."""
        following = self.offset + len(self.items)
        return following if self.items and following < self.total else None


def list_statements(
    conn: psycopg.Connection[Row],
    keys: SealKeys,
    partner: str | None = None,
    period_from: datetime | None = None,
    period_to: datetime | None = None,
    limit: int = LIST_PAGE_DEFAULT,
    offset: int = 0,
) -> StatementPage:
    """Closed batches whose period overlaps [period_from, period_to), in the order they
    closed (batch id), each with its seal checked against the stored row; at most ``limit``
    from ``offset``. Ids only grow and closed batches never go, so an offset names the same
    place however many batches close between two pages. A bound without an offset is UTC
    (``utc_unless_offset``), whatever the session's TimeZone."""
    assert 1 <= limit <= LIST_PAGE_MAX and 0 <= offset <= LIST_OFFSET_MAX, (limit, offset)
    params = {
        "partner": partner,
        "from": None if period_from is None else utc_unless_offset(period_from),
        "to": None if period_to is None else utc_unless_offset(period_to),
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(
        _SEALED_ROW + _WHERE + " ORDER BY b.batch_id LIMIT %(limit)s OFFSET %(offset)s", params
    ).fetchall()
    counted = conn.execute("SELECT count(*) AS n FROM settlement_batch b" + _WHERE, params)
    total = counted.fetchone()
    assert total is not None
    return StatementPage(tuple(_summary(row, keys) for row in rows), total["n"], offset, limit)


def iter_statements(
    conn: psycopg.Connection[Row],
    keys: SealKeys,
    partner: str | None = None,
    period_from: datetime | None = None,
    period_to: datetime | None = None,
    page: int = LIST_PAGE_MAX,
) -> Iterator[StatementSummary]:
    """Every statement of the listing, page after page (the CLI and the demo)."""
    offset: int | None = 0
    while offset is not None:
        found = list_statements(conn, keys, partner, period_from, period_to, page, offset)
        yield from found.items
        offset = found.next_offset


def _summary(row: Row, keys: SealKeys) -> StatementSummary:
    check = check_seal(
        stored_batch(row), stored_seal(row), previous_batch(row), row["first_sealed_id"], keys
    )
    return StatementSummary(
        batch_id=row["batch_id"],
        partner=row["partner"],
        currency=row["currency"],
        period_kind=SettlementPeriod(row["period_kind"]),
        period_start=row["period_start"],
        period_end=row["period_end"],
        net_amount=row["net_amount"],
        postings=row["postings"],
        late_postings=row["late_postings"],
        rounding=row["rounding"],
        checksum=row["checksum"],
        closed_at=row["closed_at"],
        checksum_version=row["checksum_version"],
        seal_status=check.status,
        seal_key_id=row["seal_key_id"],
    )


def _batch(conn: psycopg.Connection[Row], batch_id: int) -> Row:
    row = conn.execute(
        "SELECT * FROM settlement_batch WHERE batch_id = %s AND state = 'CLOSED'", (batch_id,)
    ).fetchone()
    if row is None:
        raise StatementNotFound(f"no closed settlement batch {batch_id}")
    return row


def batch_partner(conn: psycopg.Connection[Row], batch_id: int) -> str:
    """The partner of a closed batch (StatementNotFound otherwise): for access checks."""
    return str(_batch(conn, batch_id)["partner"])


def _lines(conn: psycopg.Connection[Row], batch_id: int, partner: str) -> Iterator[StatementLine]:
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(_LINES, (batch_id,))
        while rows := cursor.fetchmany(LINES_FETCH_ROWS):
            for (
                posting_id,
                transaction_id,
                kind_text,
                cdr_key,
                cpo,
                emsp,
                start,
                end,
                location,
                energy,
                excl,
                incl,
                fee,
                side_text,
                amount,
                late,
                vat,
            ) in rows:
                side, kind = Side(side_text), TransactionKind(kind_text)
                role = role_of(partner, cpo, emsp, kind, side)
                counterparty = emsp if role is LineRole.CPO else cpo
                if kind is TransactionKind.ROUNDING:
                    counterparty = None
                yield StatementLine(
                    posting_id,
                    TransactionId(transaction_id),
                    kind,
                    cdr_key,
                    role,
                    counterparty,
                    start,
                    end,
                    location,
                    energy,
                    excl,
                    incl,
                    fee,
                    side,
                    amount,
                    late,
                    vat_parts(vat, excl, incl),
                )


def load_statement(conn: psycopg.Connection[Row], batch_id: int) -> Statement:
    """The statement of a closed batch: its lines from the ledger, its totals as stored."""
    batch = _batch(conn, batch_id)
    lines = list(_lines(conn, batch_id, batch["partner"]))
    header = StatementHeader(
        batch_id=batch["batch_id"],
        partner=batch["partner"],
        roles=roles_of(lines),
        currency=batch["currency"],
        period_kind=SettlementPeriod(batch["period_kind"]),
        period_start=batch["period_start"],
        period_end=batch["period_end"],
        settlement_tz=batch["settlement_tz"],
        state=BatchState(batch["state"]),
        checksum=batch["checksum"],
        created_at=batch["created_at"],
        closed_at=batch["closed_at"],
        checksum_version=batch["checksum_version"],
        seal=batch["seal"],
        seal_key_id=batch["seal_key_id"],
    )
    return with_stored_totals(build_statement(header, lines), stored_totals(batch))


def stored_totals(batch: Row) -> StoredTotals:
    """The totals a settlement_batch row stores."""
    return StoredTotals(
        postings=batch["postings"],
        late_postings=batch["late_postings"],
        debit=batch["debit_total"],
        credit=batch["credit_total"],
        rounding=batch["rounding"],
        late_net=batch["late_net"],
    )


@dataclass(frozen=True, slots=True)
class Verification:
    batch_id: int
    checksum_version: int
    stored_checksum: str
    recomputed_checksum: str
    seal_status: SealStatus
    seal_key_id: str | None
    differences: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return not self.differences

    def json(self) -> dict[str, Any]:
        return {
            "id": self.batch_id,
            "matches": self.matches,
            "checksum_version": self.checksum_version,
            "stored_checksum": self.stored_checksum,
            "recomputed_checksum": self.recomputed_checksum,
            "seal_status": self.seal_status.value,
            "seal_key_id": self.seal_key_id,
            "differences": list(self.differences),
        }


# Member transactions the clearing path and the closer cannot account for: a CDR transaction
# without its archived record's LEDGERED outcome, a rounding transaction not the batch's, or
# an adjustment no accepted dispute names; unless an applied replay booked it (0020).
# A balanced booking forged before the close is sealed in with the rest: this names it.
_UNEXPLAINED_MEMBERS = """
SELECT count(DISTINCT p.transaction_id) AS n
  FROM settlement_batch b
 CROSS JOIN LATERAL settlement_batch_postings(b) p
  JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
 WHERE b.batch_id = %s
   AND CASE t.kind
         WHEN 'ROUNDING' THEN t.transaction_id IS DISTINCT FROM b.rounding_transaction_id
         WHEN 'ADJUSTMENT' THEN NOT EXISTS (SELECT 1 FROM dispute d
                                             WHERE d.adjustment_id = t.transaction_id)
         ELSE NOT EXISTS (SELECT 1 FROM cdr_outcome o
                           WHERE o.outcome = 'LEDGERED' AND o.transaction_id = t.transaction_id
                             AND o.archive_id = t.archive_id)
       END
   -- an applied replay's corrections: its ADJUSTMENTs, and the CHARGE of a now_booked CDR
   AND NOT EXISTS (SELECT 1 FROM replay_correction c
                    WHERE t.transaction_id IN (c.reversal_id, c.charge_id))
"""


def verify(conn: psycopg.Connection[Row], batch_id: int, keys: SealKeys) -> Verification:
    """Recompute the batch from the ledger and check its seal and chain link; every
    difference with what was stored."""
    batch = conn.execute(
        _SEALED_ROW + " WHERE b.batch_id = %s AND b.state = 'CLOSED'", (batch_id,)
    ).fetchone()
    if batch is None:
        raise StatementNotFound(f"no closed settlement batch {batch_id}")
    stored = stored_batch(batch)
    check = check_seal(
        stored, stored_seal(batch), previous_batch(batch), batch["first_sealed_id"], keys
    )
    if batch["checksum_version"] == CHECKSUM_V1:
        found, checksum = _recompute_v1(conn, batch)
    else:
        recomputed = conn.execute(_RECOMPUTE_V2, (batch_id,)).fetchone()
        assert recomputed is not None
        found = recomputed
        rounding = found["rounding_digest"] or NO_ROUNDING
        checksum = batch_checksum_v2(stored, found["body"] or body_digest([]), rounding)
    differences = [
        f"{name}: stored {batch[column]}, ledger {found[name]}"
        for name, column in (
            ("postings", "postings"),
            ("late_postings", "late_postings"),
            ("debit", "debit_total"),
            ("credit", "credit_total"),
            ("late_net", "late_net"),
        )
        if batch[column] != found[name]
    ]
    expected_legs = 0 if batch["rounding_transaction_id"] is None else 1
    if found["rounding_legs"] != expected_legs:
        differences.append(
            f"rounding postings: expected {expected_legs}, ledger {found['rounding_legs']}"
        )
    net = batch["credit_total"] - batch["debit_total"]
    if round_minor_unit(net, batch["currency"]) != net:
        differences.append(f"net_amount {net} is not in {batch['currency']} minor units")
    if checksum != batch["checksum"]:
        differences.append(f"checksum: stored {batch['checksum']}, ledger {checksum}")
    differences.extend(check.differences)
    unexplained = conn.execute(_UNEXPLAINED_MEMBERS, (batch_id,)).fetchone()
    assert unexplained is not None
    if unexplained["n"]:
        differences.append(
            f"{unexplained['n']} transaction(s) of this batch have no archived record whose "
            "outcome booked them: they were booked outside clearing"
        )
    return Verification(
        batch_id,
        batch["checksum_version"],
        batch["checksum"],
        checksum,
        check.status,
        batch["seal_key_id"],
        tuple(differences),
    )


def _recompute_v1(conn: psycopg.Connection[Row], batch: Row) -> tuple[Row, str]:
    """The ledger's totals and the version 1 checksum of a batch closed before sealing."""
    found = conn.execute(_RECOMPUTE_V1, (batch["batch_id"],)).fetchone()
    assert found is not None
    key = BatchKey(batch["account"], batch["currency"], SettlementPeriod(batch["period_kind"]))
    body = found["body"] if found["body"] is not None else body_digest([])
    line = rounding_line(
        None if found["rounding_side"] is None else str(batch["rounding_transaction_id"]),
        found["rounding_side"],
        found["rounding_amount"],
    )
    checksum = batch_checksum(
        key,
        batch["period_start"],
        batch["period_end"],
        batch["watermark"],
        batch["prior_watermark"],
        body,
        line,
    )
    return found, checksum
