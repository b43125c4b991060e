"""A settlement statement: one closed batch as finance sends it to the partner.

Every figure comes from the ledger: the lines are the batch's postings (joined with their
ledger transactions), the totals are sums over the lines, and

    net_amount = receivable_as_cpo - payable_as_emsp - hub_fees + rounding

holds exactly, where ``net_amount = credit - debit`` on the partner's account (positive: the
hub pays the partner). Per line, the *gross* is the CDR's amount incl. VAT (negative for a
reversal); the hub fee the partner paid on a line is what separates its gross from what was
booked (``+gross - booked`` as CPO, ``-gross - booked`` as eMSP), so the statement never
guesses who paid the fee.

Example (NL*TNM as CPO, fee paid by the CPO): gross 10.0000, booked CREDIT 9.8500
-> receivable 10.0000, fee 0.1500, net 9.8500; rounding +0.0000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.batch import BatchState
from schemas.hub.ledger import Side, TransactionId, TransactionKind


class LineRole(StrEnum):
    """The partner's part in a statement line (what it is registered as is a
    schemas.hub.party.PartnerRole)."""

    CPO = "CPO"  # the partner operated the charge point: the hub owes it
    EMSP = "EMSP"  # the partner's customer charged: it owes the hub
    ROUNDING = "ROUNDING"  # the batch's rounding to the currency's minor unit


class Direction(StrEnum):
    """Who pays whom at settlement."""

    HUB_PAYS_PARTNER = "HUB_PAYS_PARTNER"  # net > 0
    PARTNER_PAYS_HUB = "PARTNER_PAYS_HUB"  # net < 0
    NOTHING_DUE = "NOTHING_DUE"  # net = 0


@dataclass(frozen=True, slots=True)
class VatPart:
    """One VAT rate's share of a CDR (``rating->'vat_breakdown'``); ``vat`` None: unknown."""

    vat: str | None
    excl_vat: Decimal
    incl_vat: Decimal


# The sign a line's gross takes in the partner's net, per role: the hub owes a CPO its gross
# and is owed an eMSP's; a rounding line has no gross. The CSV's SQL renders its CASE from
# this (settlement.store.statements_csv.expected_net_sql).
GROSS_AS_NET: Final[Mapping[LineRole, int]] = {
    LineRole.CPO: 1,
    LineRole.EMSP: -1,
    LineRole.ROUNDING: 0,
}


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One posting on the partner's account in the batch, with its CDR's facts."""

    posting_id: int
    transaction_id: TransactionId
    kind: TransactionKind
    cdr_key: str  # as the ledger row holds it: a CDR's key, or ROUNDING*<transaction id>
    role: LineRole
    counterparty: str | None
    session_start: datetime
    session_end: datetime
    location_id: str | None
    energy_kwh: Decimal
    amount_excl_vat: Decimal  # signed: negative for a reversal
    amount_incl_vat: Decimal  # signed: the line's gross
    fee: Decimal  # the CDR's hub fee (whoever paid it)
    side: Side
    amount: Decimal  # booked on the partner's account, positive
    late: bool
    vat_breakdown: tuple[VatPart, ...]

    @property
    def net(self) -> Decimal:
        """Credit minus debit on the partner's account."""
        return self.amount if self.side is Side.CREDIT else -self.amount

    @property
    def expected_net(self) -> Decimal:
        """The line's gross as the partner's net: + as CPO, - as eMSP, 0 for rounding."""
        return self.amount_incl_vat * GROSS_AS_NET[self.role]

    @property
    def fee_paid(self) -> Decimal:
        """The hub fee this partner paid on this line (0 when the counterparty paid it)."""
        if self.role is LineRole.ROUNDING:
            return Decimal(0)
        return self.expected_net - self.net


@dataclass(frozen=True, slots=True)
class StatementHeader:
    batch_id: int
    partner: str
    roles: tuple[str, ...]
    currency: str
    period_kind: SettlementPeriod
    period_start: datetime
    period_end: datetime
    settlement_tz: str
    state: BatchState
    checksum: str
    created_at: datetime
    closed_at: datetime | None
    checksum_version: int = 1  # 2: covers every figure and is sealed (batches since 0007)
    seal: str | None = None  # HMAC-SHA256 with the hub's statement key (settlement.batches.seal)
    seal_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredTotals:
    """The totals the closer stored on the batch row (and, since checksum v2, sealed)."""

    postings: int
    late_postings: int
    debit: Decimal
    credit: Decimal
    rounding: Decimal
    late_net: Decimal


@dataclass(frozen=True, slots=True)
class StatementTotals:
    postings: int
    late_postings: int
    receivable_as_cpo: Decimal
    payable_as_emsp: Decimal
    hub_fees: Decimal
    rounding: Decimal
    late_adjustments: Decimal  # net of the late lines (already inside the other totals)
    debit: Decimal
    credit: Decimal
    net_amount: Decimal
    direction: Direction


@dataclass(frozen=True, slots=True)
class VatRow:
    role: LineRole
    vat: str | None
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True, slots=True)
class Statement:
    header: StatementHeader
    totals: StatementTotals
    vat: tuple[VatRow, ...]
    lines: tuple[StatementLine, ...]
