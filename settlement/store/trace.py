"""Reading one CDR's trace (settlement.cdr_trace.CdrTrace) from PostgreSQL.

    with connect(url) as conn:
        trace = read_trace(conn, CdrKey.parse("NL*TNM*CDR-1"))

One read-only REPEATABLE READ transaction (every query sees the same snapshot, so a booking
committed meanwhile cannot appear half) of seven small queries, each by an index: the
transactions linked to the key (its charge, the reversal of it, or, for a credit's own key,
the charge it reversed), their postings with the closed batch each landed in, the archived
records (booked, duplicates, rejections naming the key) with their HTTP receipts, what the
OCPI door refused, the deliveries and their attempts, the reference data the charge
names, and the disputes of the CDR with the ADJUSTMENT transactions that settled any. Then
its archived record is re-rated for the per-period breakdown (settlement.rerating).
Read-only: `roamclear_reader` and `roamclear_api` may run it (SELECT on every table,
post-apply.sql).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg.pq import TransactionStatus

from schemas.hub.party import CdrKey
from schemas.validation import parse_agreement
from settlement.cdr_trace import (
    AgreementAsBooked,
    ArchivedRecord,
    CdrTrace,
    DeliveryAttempt,
    DeliveryTrace,
    DisputeTrace,
    HttpReceipt,
    LocationAsBooked,
    PostingTrace,
    Pricing,
    RecordOutcome,
    RefusedAtIngest,
    StatementLine,
    TariffVersion,
    Totals,
    TransactionTrace,
)
from settlement.clearing.decode import Decoded, decode_validated
from settlement.clearing.trace import ChargeTrace
from settlement.rerating import rerate_as_booked
from settlement.store.db import Row
from settlement.store.disputes import disputes_of


class TraceNotFound(LookupError):
    """No record, booking or refusal names this CDR key: check the key (CC*PID*ID, the CDR's
    own country_code, party_id and id) and the database (`roamclear counts`)."""


# The key's own booking, the reversal of it, the charge it reverses: each by a unique index
# (one_booking_per_cdr, one_reversal_per_transaction, the primary key).
_TRANSACTIONS: Final = """
WITH own AS (SELECT transaction_id, reverses FROM ledger_transaction
             WHERE cdr_key = %(key)s AND kind <> 'ROUNDING'),
linked AS (
    SELECT transaction_id FROM own
    UNION SELECT r.transaction_id FROM ledger_transaction r JOIN own
                 ON r.reverses = own.transaction_id
    UNION SELECT reverses FROM own WHERE reverses IS NOT NULL)
SELECT t.*, t.transaction_id::text AS id, t.reverses::text AS reverses_id,
       (SELECT r.transaction_id::text FROM ledger_transaction r
         WHERE r.reverses = t.transaction_id) AS reversed_by
  FROM linked JOIN ledger_transaction t USING (transaction_id)
 ORDER BY t.booked_at, t.kind
"""

# A closed batch holds a posting by the membership rule of migration 0003
# (settlement_batch_postings): its key, at or below its watermark, on time or late.
# the ADJUSTMENT transactions that settled the CDR's disputes (dispute.adjustment_id)
_ADJUSTMENTS: Final = """
SELECT t.*, t.transaction_id::text AS id, NULL::text AS reverses_id, NULL::text AS reversed_by
  FROM ledger_transaction t WHERE t.transaction_id = ANY(%(ids)s::uuid[])
 ORDER BY t.booked_at
"""

_POSTINGS: Final = """
SELECT p.posting_id, p.transaction_id::text AS transaction_id, p.account, p.side, p.amount,
       p.currency, p.value_time, p.settlement_period, b.batch_id, b.partner, b.period_kind,
       b.period_start, b.period_end, b.closed_at, p.value_time < b.period_start AS late
  FROM ledger_posting p
  LEFT JOIN LATERAL (
        SELECT * FROM settlement_batch b
         WHERE b.state = 'CLOSED' AND b.account = p.account AND b.currency = p.currency
           AND b.period_kind = p.settlement_period AND p.posting_id <= b.watermark
           AND ((p.value_time >= b.period_start AND p.value_time < b.period_end)
                OR (p.value_time < b.period_start AND p.posting_id > b.prior_watermark))
         ORDER BY b.period_start LIMIT 1) b ON true
 WHERE p.transaction_id = ANY(%(ids)s::uuid[])
 ORDER BY p.posting_id
"""

# The booked records come from ledger_transaction.archive_id, duplicates from cdr_outcome's
# partial index and rejections from rejection's (both migration 0019).
_RECORDS: Final = """
WITH ids AS (
    SELECT archive_id FROM ledger_transaction
     WHERE transaction_id = ANY(%(ids)s::uuid[]) AND archive_id IS NOT NULL
    UNION SELECT archive_id FROM cdr_outcome
     WHERE outcome = 'DUPLICATE' AND transaction_id = ANY(%(ids)s::uuid[])
    UNION SELECT archive_id FROM rejection
     WHERE cdr_key = ANY(%(keys)s::text[]) AND archive_id IS NOT NULL)
SELECT e.archive_id, e.topic, e.partition, e."offset", e.broker_timestamp, e.received_at,
       e.key, e.value, o.outcome, o.transaction_id::text AS transaction_id, o.proof,
       o.decided_at, j.rejection_id, j.reason_code, j.stage, j.message,
       j.cdr_key AS rejection_key,
       r.receipt_id::text AS receipt_id,
       r.partner AS http_partner, r.request_id, r.correlation_id,
       r.received_at AS http_received_at
  FROM ids JOIN raw_event e USING (archive_id)
  JOIN cdr_outcome o USING (archive_id)
  LEFT JOIN rejection j ON j.rejection_id = o.rejection_id
  LEFT JOIN ocpi_cdr_published pub
         ON (pub.topic, pub.partition, pub."offset") = (e.topic, e.partition, e."offset")
  LEFT JOIN ocpi_cdr_receipt r ON r.receipt_id = pub.receipt_id
 ORDER BY e.archive_id
"""

_REFUSED: Final = """
SELECT j.rejection_id, j.cdr_key, j.reason_code, j.message, j.rejected_at,
       r.receipt_id::text AS receipt_id, r.partner AS http_partner, r.request_id,
       r.correlation_id, r.received_at AS http_received_at
  FROM rejection j LEFT JOIN ocpi_cdr_receipt r ON r.rejection_id = j.rejection_id
 WHERE j.cdr_key = ANY(%(keys)s::text[]) AND j.archive_id IS NULL
 ORDER BY j.rejection_id
"""

_DELIVERIES: Final = """
SELECT delivery_id, transaction_id::text AS transaction_id, kind, emsp, state, attempts,
       correlation_id, request_id, emsp_location, created_at, delivered_at, last_error
  FROM cdr_delivery WHERE cdr_key = ANY(%(keys)s::text[]) ORDER BY delivery_id
"""

_ATTEMPTS: Final = """
SELECT delivery_id, attempt, request_id, url, started_at, finished_at, delivered,
       http_status, ocpi_status, error
  FROM cdr_delivery_attempt WHERE delivery_id = ANY(%(ids)s::bigint[])
 ORDER BY delivery_id, attempt
"""

# The reference data a charge names: the tariff version by its hash (invariant 7), the
# agreement version, the newest location version stored when it was booked.
_REFERENCE: Final = """
SELECT (SELECT body FROM tariff_version
         WHERE tariff_key = %(tariff_key)s AND last_updated = %(tariff_updated)s
           AND content_hash = %(tariff_hash)s) AS tariff_body,
       (SELECT body FROM agreement_version
         WHERE agreement_id = %(agreement_id)s AND version = %(agreement_version)s)
           AS agreement_body,
       (SELECT max(last_updated) FROM location_version
         WHERE location_key = %(location_key)s AND published_at <= %(booked_at)s)
           AS location_updated
"""


def read_trace(conn: psycopg.Connection[Row], key: CdrKey) -> CdrTrace:
    """Everything that made `key`'s figures (TraceNotFound when nothing names it)."""
    text = str(key)
    # inside a caller's transaction this is a savepoint of it, which already has a snapshot
    fresh = conn.info.transaction_status is TransactionStatus.IDLE
    with conn.transaction():
        if fresh:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        booked = conn.execute(_TRANSACTIONS, {"key": text}).fetchall()
        ids = [row["id"] for row in booked]
        keys = sorted({text, *(row["cdr_key"] for row in booked)})
        postings = conn.execute(_POSTINGS, {"ids": ids}).fetchall()
        records = conn.execute(_RECORDS, {"ids": ids, "keys": keys}).fetchall()
        refused = conn.execute(_REFUSED, {"keys": keys}).fetchall()
        if not (booked or records or refused):
            raise TraceNotFound(
                f"no archived record, booking or OCPI refusal names the CDR key {text} "
                "(a key is CC*PID*ID: the CDR's own country_code, party_id and id; a credit "
                "CDR is found by its own id or the id it credits)"
            )
        deliveries = _deliveries(conn, keys)
        charge = next((row for row in booked if row["kind"] == "CHARGE"), None)
        pricing = None if charge is None else _pricing(conn, charge, records)
        disputes = _disputes(conn, keys)
    return CdrTrace(
        cdr_key=text,
        cpo=str(key.party) if charge is None else charge["cpo"],
        emsp=None if charge is None else charge["emsp"],
        records=tuple(_record(row) for row in records),
        refused_at_ingest=tuple(_refused(row) for row in refused),
        pricing=pricing,
        transactions=tuple(_transaction(row, postings) for row in booked),
        deliveries=deliveries,
        disputes=disputes,
    )


def rejections_naming(
    conn: psycopg.Connection[Row], keys: Sequence[str]
) -> tuple[tuple[ArchivedRecord, ...], tuple[tuple[str, RefusedAtIngest], ...]]:
    """The archived records rejected under `keys` and what the OCPI door refused (each with
    the key it named), by the trace's own queries: `roamclear reconcile` asks this of the
    CDRs a partner lists and the hub did not book. Runs in the caller's transaction."""
    records = conn.execute(_RECORDS, {"ids": [], "keys": list(keys)}).fetchall()
    refused = conn.execute(_REFUSED, {"keys": list(keys)}).fetchall()
    return (
        tuple(_record(row) for row in records),
        tuple((row["cdr_key"], _refused(row)) for row in refused),
    )


def _disputes(conn: psycopg.Connection[Row], keys: list[str]) -> tuple[DisputeTrace, ...]:
    """The disputes of the CDR (a dispute names the CHARGE's key), with their adjustments."""
    found = disputes_of(conn, keys)
    ids = [d.adjustment_id for d in found if d.adjustment_id is not None]
    if not ids:
        return tuple(DisputeTrace(d, None) for d in found)
    rows = conn.execute(_ADJUSTMENTS, {"ids": ids}).fetchall()
    postings = conn.execute(_POSTINGS, {"ids": ids}).fetchall()
    adjustments = {row["id"]: _transaction(row, postings) for row in rows}
    return tuple(DisputeTrace(d, adjustments.get(d.adjustment_id or "")) for d in found)


def _http(row: Row) -> HttpReceipt | None:
    if row["receipt_id"] is None:
        return None
    return HttpReceipt(
        row["receipt_id"],
        row["http_partner"],
        row["request_id"],
        row["correlation_id"],
        row["http_received_at"],
    )


def _record(row: Row) -> ArchivedRecord:
    value = None if row["value"] is None else bytes(row["value"])
    decoded = decode_validated(value)
    envelope = decoded if isinstance(decoded, Decoded) else None
    # a rejection keeps the submitter the envelope named, when it could be read
    claimed = None if decoded.submitter is None else str(decoded.submitter)
    return ArchivedRecord(
        archive_id=row["archive_id"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        broker_time=row["broker_timestamp"],
        archived_at=row["received_at"],
        cdr_key=str(CdrKey.of(envelope.cdr)) if envelope is not None else row["rejection_key"],
        kafka_key=None if row["key"] is None else bytes(row["key"]).decode("utf-8", "replace"),
        event_id=None if envelope is None else envelope.event_id,
        claimed_submitter=claimed,
        proof=row["proof"],
        authenticated_submitter=claimed if row["proof"] is not None else None,
        http=_http(row),
        outcome=RecordOutcome(
            row["outcome"],
            row["decided_at"],
            row["transaction_id"],
            row["rejection_id"],
            row["reason_code"],
            row["stage"],
            row["message"],
        ),
    )


def _refused(row: Row) -> RefusedAtIngest:
    return RefusedAtIngest(
        row["rejection_id"], row["reason_code"], row["message"], row["rejected_at"], _http(row)
    )


def _transaction(row: Row, postings: Sequence[Row]) -> TransactionTrace:
    own = [p for p in postings if p["transaction_id"] == row["id"]]
    return TransactionTrace(
        transaction_id=row["id"],
        kind=row["kind"],
        cdr_key=row["cdr_key"],
        reverses=row["reverses_id"],
        reversed_by=row["reversed_by"],
        content_hash=row["content_hash"],
        currency=row["currency"],
        cpo=row["cpo"],
        emsp=row["emsp"],
        energy_kwh=row["energy_kwh"],
        amount_excl_vat=row["amount_excl_vat"],
        amount_incl_vat=row["amount_incl_vat"],
        fee=row["fee"],
        archive_id=row["archive_id"],
        booked_at=row["booked_at"],
        postings=tuple(_posting(p) for p in own),
    )


def _posting(row: Row) -> PostingTrace:
    statement = (
        None
        if row["batch_id"] is None
        else StatementLine(
            row["batch_id"],
            row["partner"],
            row["period_kind"],
            row["period_start"],
            row["period_end"],
            row["closed_at"],
            bool(row["late"]),
        )
    )
    return PostingTrace(
        row["posting_id"],
        row["account"],
        row["side"],
        row["amount"],
        row["currency"],
        row["value_time"],
        row["settlement_period"],
        statement,
    )


def _deliveries(conn: psycopg.Connection[Row], keys: Sequence[str]) -> tuple[DeliveryTrace, ...]:
    rows = conn.execute(_DELIVERIES, {"keys": keys}).fetchall()
    attempts = conn.execute(_ATTEMPTS, {"ids": [r["delivery_id"] for r in rows]}).fetchall()
    return tuple(
        DeliveryTrace(
            **row,
            attempt_log=tuple(
                DeliveryAttempt(**{k: v for k, v in a.items() if k != "delivery_id"})
                for a in attempts
                if a["delivery_id"] == row["delivery_id"]
            ),
        )
        for row in rows
    )


def _pricing(conn: psycopg.Connection[Row], charge: Row, records: Sequence[Row]) -> Pricing:
    booked = ChargeTrace.from_json(charge["rating"])
    tariff = booked.tariff
    tariff_key = f"{tariff.country_code}*{tariff.party_id}*{tariff.id.upper()}"
    location_id = charge["location_id"]
    location_key = None if location_id is None else f"{charge['cpo']}*{location_id.upper()}"
    reference = conn.execute(
        _REFERENCE,
        {
            "tariff_key": tariff_key,
            "tariff_updated": tariff.last_updated,
            "tariff_hash": tariff.content_hash,
            "agreement_id": booked.agreement.agreement_id,
            "agreement_version": booked.agreement.version,
            "location_key": location_key,
            "booked_at": charge["booked_at"],
        },
    ).fetchone()
    assert reference is not None
    agreement_body = reference["agreement_body"]
    tolerance = None if agreement_body is None else parse_agreement(agreement_body).tolerance
    archived = next((r for r in records if r["archive_id"] == charge["archive_id"]), None)
    value = None if archived is None or archived["value"] is None else bytes(archived["value"])
    return Pricing(
        tariff=TariffVersion(
            tariff_key,
            tariff.id,
            tariff.last_updated,
            tariff.content_hash,
            stored=reference["tariff_body"] is not None,
            fetch=TariffVersion.fetch_hint(charge["cdr_key"], reference["tariff_body"] is not None),
        ),
        location=LocationAsBooked(location_id, booked.time_zone, reference["location_updated"]),
        agreement=AgreementAsBooked(
            booked.agreement.agreement_id,
            booked.agreement.version,
            booked.rounding.mode.value,
            booked.rounding.decimals,
            booked.settles.value,
            booked.fee_payer.value,
            booked.settlement_period.value,
            tolerance,
        ),
        totals=_totals(booked),
        vat_breakdown=booked.vat_breakdown,
        breakdown=rerate_as_booked(
            value,
            reference["tariff_body"],
            booked.time_zone,
            tolerance,
            booked.hub_total.excl_vat,
            booked.hub_total.incl_vat,
        ),
    )


def _totals(booked: ChargeTrace) -> Totals:
    allocation = booked.allocation
    return Totals(
        declared_excl_vat=booked.declared_total.excl_vat,
        declared_incl_vat=booked.declared_total.incl_vat,
        computed_excl_vat=booked.hub_total.excl_vat,
        computed_incl_vat=booked.hub_total.incl_vat,
        price_limit=booked.price_limit,
        settled_excl_vat=allocation.amount_excl_vat,
        settled_incl_vat=allocation.amount_incl_vat,
        fee=allocation.fee,
        emsp_owes=allocation.emsp_owes,
        cpo_owed=allocation.cpo_owed,
    )


def stored_tariff_body(conn: psycopg.Connection[Row], trace: CdrTrace) -> dict[str, Any] | None:
    """The stored tariff version that priced the traced charge, as stored (None: none)."""
    if trace.pricing is None or not trace.pricing.tariff.stored:
        return None
    tariff = trace.pricing.tariff
    row = conn.execute(
        "SELECT body FROM tariff_version WHERE tariff_key = %s AND last_updated = %s"
        " AND content_hash = %s",
        (tariff.tariff_key, tariff.last_updated, tariff.content_hash),
    ).fetchone()
    return None if row is None else dict(row["body"])
