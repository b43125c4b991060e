"""Everything that made one CDR's figures, as one typed value (`roamclear trace`, the finance
API's `GET /finance/v1/cdrs/{key}/trace`).

A `CdrTrace` holds, in order: every archived record that carried the CDR (where the broker
put it, who proved to have sent it, the HTTP request ids when it came over OCPI) with its
outcome; what was refused at the OCPI door before reaching the topic; how the charge was
priced (tariff version, location and time zone, agreement version and rounding, the
per-period breakdown, declared vs computed totals); every transaction linked to it (the
charge, its reversal) with its postings and the settled batch and statement line each
posting landed in; its deliveries to the eMSP; and its disputes, each with its history
(who moved it, when, why) and, when a hub adjustment settled it, that ADJUSTMENT transaction
with its postings and statement lines (a credit that settled one is among the transactions,
named by the dispute's `credit_cdr_key`). Its JSON is stable machine output: money
and volumes are decimal strings, times ISO 8601, closed sets their names.

    >>> TRACE_JSON_VERSION
    1

settlement.store.trace reads one; this module only holds and renders it (no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from settlement.clearing.trace import VatLine
from settlement.disputes import Dispute
from settlement.rating import RatedCdr
from settlement.rating.report import rated_cdr_json

TRACE_JSON_VERSION: Final = 1
"""Bumped when a field of the JSON changes meaning or goes away (new fields do not:
`disputes` came in version 1)."""


def plain(value: Any) -> Any:
    """A value as JSON-ready data: Decimals as strings (exact), times ISO 8601, enums their
    values, dataclasses by their `as_json` (or field by field), tuples as lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "as_json"):
        return value.as_json()
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class HttpReceipt:
    """The OCPI request that brought a record (ocpi_cdr_receipt), when it came over HTTP."""

    receipt_id: str
    partner: str  # the token's partner: who authenticated
    request_id: str  # X-Request-ID
    correlation_id: str  # X-Correlation-ID
    received_at: datetime


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """How the clearing decided one archived record (cdr_outcome, rejection)."""

    outcome: str  # LEDGERED, DUPLICATE or REJECTED
    decided_at: datetime
    transaction_id: str | None  # booked or duplicate of
    rejection_id: int | None
    reason_code: str | None
    stage: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One record of cdr.submitted as archived (raw_event) with its outcome."""

    archive_id: int
    topic: str
    partition: int
    offset: int
    broker_time: datetime | None
    archived_at: datetime
    cdr_key: str | None  # the key of the CDR it carried (a credit's own), as far as readable
    kafka_key: str | None  # as produced (not trusted: the clearing re-keys)
    event_id: str | None  # the envelope's, when it could be read
    claimed_submitter: str | None  # the envelope's `submitter`, a claim
    proof: str | None  # the key that proved it (hub-…, pk-…); None: no valid proof
    authenticated_submitter: str | None  # the claim, when a proof backed it
    http: HttpReceipt | None
    outcome: RecordOutcome


@dataclass(frozen=True, slots=True)
class RefusedAtIngest:
    """A body the OCPI receiver refused at the door: kept, never on the topic."""

    rejection_id: int
    reason_code: str
    message: str
    rejected_at: datetime
    http: HttpReceipt | None


@dataclass(frozen=True, slots=True)
class TariffVersion:
    """The tariff version a charge names (invariant 7), and whether the hub stores it."""

    tariff_key: str  # NL*TNM*AC-1
    tariff_id: str
    last_updated: datetime | None
    content_hash: str
    stored: bool  # False: the CDR's embedded tariff priced it (the body is in the archive)
    fetch: str  # how to get the stored version's body

    @staticmethod
    def fetch_hint(cdr_key: str, stored: bool) -> str:
        if not stored:
            return "embedded in the archived CDR: `roamclear trace KEY --json` .records"
        return f"roamclear trace '{cdr_key}' --tariff"


@dataclass(frozen=True, slots=True)
class LocationAsBooked:
    location_id: str | None
    time_zone: str | None  # the zone rating used (the charge's record)
    version_last_updated: datetime | None  # the newest location version stored at booking


@dataclass(frozen=True, slots=True)
class AgreementAsBooked:
    agreement_id: str
    version: int
    rounding_mode: str
    rounding_decimals: int
    settles: str  # HUB_COMPUTED or CPO_DECLARED
    fee_payer: str
    settlement_period: str
    tolerance: Decimal | None  # None: the version is not stored (cannot re-rate as booked)


@dataclass(frozen=True, slots=True)
class Totals:
    """Declared by the CPO, computed by the hub, and what settled."""

    declared_excl_vat: Decimal | None
    declared_incl_vat: Decimal | None
    computed_excl_vat: Decimal | None
    computed_incl_vat: Decimal | None
    price_limit: str | None
    settled_excl_vat: Decimal
    settled_incl_vat: Decimal
    fee: Decimal
    emsp_owes: Decimal
    cpo_owed: Decimal


class BreakdownSource(Enum):
    """Where a per-period breakdown comes from."""

    RE_RATED = "re-rated"  # the archived CDR re-rated with the as-booked reference data
    UNAVAILABLE = "unavailable"  # could not be re-rated: `note` says why


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The per-period price. Bookings keep their totals and VAT split, not the periods, so
    the periods are re-derived by the same rating engine from the archived CDR, the tariff
    version, the time zone and the tolerance the booking used; `matches_booking` says whether
    that gives the booked total back (rating is deterministic: invariant 7)."""

    source: BreakdownSource
    rated: RatedCdr | None
    matches_booking: bool | None
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "matches_booking": self.matches_booking,
            "note": self.note,
            "rating": None if self.rated is None else rated_cdr_json(self.rated),
        }


@dataclass(frozen=True, slots=True)
class Pricing:
    """How the charge was priced and split."""

    tariff: TariffVersion
    location: LocationAsBooked
    agreement: AgreementAsBooked
    totals: Totals
    vat_breakdown: tuple[VatLine, ...]  # as booked (ledger_transaction.rating)
    breakdown: Breakdown


@dataclass(frozen=True, slots=True)
class StatementLine:
    """The closed settlement batch a posting landed in; its statement is the batch's
    (`/finance/v1/statements/{statement_id}`), its line the posting."""

    statement_id: int  # the batch id
    partner: str
    period_kind: str
    period_start: datetime
    period_end: datetime
    closed_at: datetime | None
    late: bool  # booked after its period closed: carried into this later batch


@dataclass(frozen=True, slots=True)
class PostingTrace:
    posting_id: int
    account: str
    side: str
    amount: Decimal
    currency: str
    value_time: datetime
    settlement_period: str
    statement: StatementLine | None  # None: not in a closed batch yet (or a hub account)


@dataclass(frozen=True, slots=True)
class TransactionTrace:
    transaction_id: str
    kind: str  # CHARGE, REVERSAL, or ADJUSTMENT (a dispute's, keyed DISPUTE*<id>)
    cdr_key: str
    reverses: str | None
    reversed_by: str | None
    content_hash: str
    currency: str
    cpo: str
    emsp: str
    energy_kwh: Decimal
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal
    fee: Decimal
    archive_id: int | None
    booked_at: datetime
    postings: tuple[PostingTrace, ...]

    def imbalance(self) -> dict[str, Decimal]:
        """Debits minus credits per currency; all zero for a booked transaction (inv. 4)."""
        sums: dict[str, Decimal] = {}
        for p in self.postings:
            signed = p.amount if p.side == "DEBIT" else -p.amount
            sums[p.currency] = sums.get(p.currency, Decimal(0)) + signed
        return sums


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    attempt: int
    request_id: str
    url: str
    started_at: datetime
    finished_at: datetime | None
    delivered: bool | None
    http_status: int | None
    ocpi_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryTrace:
    """One booking's delivery to its eMSP (cdr_delivery) and the attempts made."""

    delivery_id: int
    transaction_id: str
    kind: str
    emsp: str
    state: str
    attempts: int
    correlation_id: str
    request_id: str | None  # of the successful attempt
    emsp_location: str | None
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: tuple[DeliveryAttempt, ...]


@dataclass(frozen=True, slots=True)
class DisputeTrace:
    """One dispute of the CDR, as `roamclear disputes show` gives it (state, history), with
    the ADJUSTMENT transaction that settled it when a hub adjustment did."""

    dispute: Dispute
    adjustment: TransactionTrace | None

    def as_json(self) -> dict[str, Any]:
        return {**self.dispute.json(), "adjustment": plain(self.adjustment)}


@dataclass(frozen=True, slots=True)
class CdrTrace:
    """One CDR's whole story (see the module docstring)."""

    cdr_key: str
    cpo: str  # the key's party: a CDR's key names its CPO
    emsp: str | None  # from its booking; None when it was never booked
    records: tuple[ArchivedRecord, ...]  # oldest first
    refused_at_ingest: tuple[RefusedAtIngest, ...]
    pricing: Pricing | None  # None: never charged
    transactions: tuple[TransactionTrace, ...]  # charge, then reversal
    deliveries: tuple[DeliveryTrace, ...]
    hidden_records: int = 0  # records of other submitters left out of a partner's view
    disputes: tuple[DisputeTrace, ...] = ()  # oldest first

    def parties(self) -> frozenset[str]:
        """Who may read it besides finance: the CDR's CPO and eMSP."""
        return frozenset(p for p in (self.cpo, self.emsp) if p is not None)

    def seen_by(self, partner: str) -> CdrTrace:
        """The trace as one of its parties sees it: records another partner submitted (a
        third party naming this key, refused) are counted, not shown; disputes are those it
        opened, the disputes API's rule (another's is not even counted: it does not exist
        for this partner)."""
        assert partner in self.parties(), f"{partner} is not a party to {self.cdr_key}"
        parties = self.parties()
        kept = tuple(r for r in self.records if _submitted_by_party(r, parties))
        own = tuple(d for d in self.disputes if d.dispute.opened_by == partner)
        return replace(
            self, records=kept, hidden_records=len(self.records) - len(kept), disputes=own
        )

    def as_json(self) -> dict[str, Any]:
        body = {f.name: plain(getattr(self, f.name)) for f in fields(self)}
        return {"trace_version": TRACE_JSON_VERSION, **body}


def _submitted_by_party(record: ArchivedRecord, parties: frozenset[str]) -> bool:
    who = record.authenticated_submitter or record.claimed_submitter
    return who is None or who in parties
