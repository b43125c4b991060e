"""The hub's side of a reconciliation and what comparing the two sides finds.

The hub's figure for a CDR is its net: the CHARGE, minus the REVERSAL a credit CDR booked
(stored with negative amounts, so a plain sum), plus the ADJUSTMENT transactions an accepted
dispute booked (`rating.adjusts` names the CDR; signed as the statement line reads). A CDR
charged 7.25 and credited in full nets 0.

    >>> from datetime import datetime, UTC
    >>> from decimal import Decimal as D
    >>> end = datetime(2026, 3, 4, 12, tzinfo=UTC)
    >>> cdr = HubCdr("NL*TNM*CDR-1", "EUR", "NL*TNM", "DE*EMP", end, (
    ...     Component("CHARGE", "NL*TNM*CDR-1", "t1", D("7.25"), D("8.7725")),
    ...     Component("ADJUSTMENT", "DISPUTE*4", "t2", D("-1.0000"), D("-1.2100"))))
    >>> cdr.net_excl_vat, cdr.net_incl_vat
    (Decimal('6.2500'), Decimal('7.5625'))

Results render as stable JSON (`as_json`: decimals as strings, times ISO 8601).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from settlement.cdr_trace import plain

RECONCILE_JSON_VERSION: Final = 1
"""Bumped when a field of the JSON changes meaning or goes away (new fields do not)."""


@dataclass(frozen=True, slots=True)
class Component:
    """One transaction that makes up a CDR's net: its kind, its own key, its amounts."""

    kind: str  # CHARGE, REVERSAL (a credit CDR, own key = the credit's) or ADJUSTMENT
    own_key: str
    transaction_id: str
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal


@dataclass(frozen=True, slots=True)
class HubCdr:
    """A CDR the hub booked for the partner (as CPO or eMSP) and what it nets to."""

    cdr_key: str
    currency: str
    cpo: str
    emsp: str
    session_end: datetime  # the charge's value time: decides its period
    components: tuple[Component, ...]

    @property
    def net_excl_vat(self) -> Decimal:
        return sum((c.amount_excl_vat for c in self.components), Decimal(0))

    @property
    def net_incl_vat(self) -> Decimal:
        return sum((c.amount_incl_vat for c in self.components), Decimal(0))

    @property
    def own_keys(self) -> tuple[str, ...]:
        """The keys a partner may list it by: its own and its credit CDRs'."""
        return (self.cdr_key, *(c.own_key for c in self.components if c.kind == "REVERSAL"))


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the hub knows of a key it has not booked for the partner (in the period)."""

    cdr_key: str
    booked_end: datetime | None = None  # booked under this key (charge or credit), its end
    booked_for_partner: bool = False  # ... with the partner as CPO or eMSP
    rejections: tuple[tuple[str, str], ...] = ()  # (reason code, message), oldest first
    refusals: tuple[tuple[str, str], ...] = ()  # refused at the OCPI door, oldest first


class MissingCause(StrEnum):
    """Why a CDR the partner lists is not among the hub's CDRs compared."""

    BOOKED_OUTSIDE_PERIOD = "booked_outside_period"  # booked, its end in another period
    BOOKED_FOR_OTHERS = "booked_for_other_parties"  # the key is booked, not as this partner's
    REJECTED = "rejected"  # received and rejected (the newest reason)
    REFUSED_AT_DOOR = "refused_at_ocpi_door"  # the OCPI receiver refused it
    NEVER_RECEIVED = "never_received"  # no record, booking or refusal names it
    AMBIGUOUS_ID = "ambiguous_id"  # a bare id several CPOs' CDRs of the partner share


@dataclass(frozen=True, slots=True)
class Explanation:
    cause: MissingCause
    reason_code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Matched:
    cdr_key: str
    currency: str
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal
    their_rows: tuple[str, ...]  # where in their file
    period: str


@dataclass(frozen=True, slots=True)
class AmountDelta:
    """Both sides list the CDR; amounts (or the currency) differ. Deltas are theirs − ours."""

    cdr_key: str
    their_currency: str
    our_currency: str
    their_excl_vat: Decimal | None
    their_incl_vat: Decimal | None
    our_excl_vat: Decimal
    our_incl_vat: Decimal
    delta_excl_vat: Decimal | None
    delta_incl_vat: Decimal | None
    their_rows: tuple[str, ...]
    period: str
    notes: tuple[str, ...]
    trace: str  # the command that shows how the hub came to its figure


@dataclass(frozen=True, slots=True)
class OnlyTheirs:
    cdr_key: str
    currency: str
    their_excl_vat: Decimal | None
    their_incl_vat: Decimal | None
    their_row: str
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class OnlyOurs:
    cdr_key: str
    currency: str
    our_excl_vat: Decimal
    our_incl_vat: Decimal
    period: str
    notes: tuple[str, ...]
    trace: str


@dataclass(frozen=True, slots=True)
class PeriodSums:
    """One period and currency: how many CDRs and how much each side lists."""

    period: str
    currency: str
    their_count: int
    their_excl_vat: Decimal
    their_incl_vat: Decimal
    our_count: int
    our_excl_vat: Decimal
    our_incl_vat: Decimal


@dataclass(frozen=True, slots=True)
class DuplicateRow:
    cdr_id: str
    where: str
    first: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    partner: str
    period: str | None
    matched: tuple[Matched, ...]
    amount_deltas: tuple[AmountDelta, ...]
    only_theirs: tuple[OnlyTheirs, ...]
    only_ours: tuple[OnlyOurs, ...]
    duplicates_in_theirs: tuple[DuplicateRow, ...]
    outside_period: tuple[str, ...]  # their rows whose own period is not --period (skipped)
    periods: tuple[PeriodSums, ...]
    ignored_columns: tuple[str, ...]

    @property
    def all_matched(self) -> bool:
        return not (
            self.amount_deltas or self.only_theirs or self.only_ours or self.duplicates_in_theirs
        )

    def as_json(self) -> dict[str, Any]:
        body = {f.name: plain(getattr(self, f.name)) for f in fields(self)}
        counts = {
            name: len(getattr(self, name))
            for name in ("matched", "amount_deltas", "only_theirs", "only_ours")
        }
        return {
            "reconcile_version": RECONCILE_JSON_VERSION,
            "all_matched": self.all_matched,
            "counts": counts,
            **body,
        }


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One CDR id of an invoice record and the hub's figure for it (None: not booked)."""

    cdr_id: str
    cdr_key: str | None
    currency: str | None
    amount_excl_vat: Decimal | None
    amount_incl_vat: Decimal | None
    explanation: Explanation | None


@dataclass(frozen=True, slots=True)
class InvoiceCheck:
    """The hub's total for an invoice's CDRs against the invoice's amount."""

    partner: str
    invoice_id: str
    record_id: str | None
    record_owner: str | None
    basis: str  # "incl_vat" or "excl_vat": which hub amount the invoice amount is
    currency: str
    invoice_amount: Decimal
    hub_total_excl_vat: Decimal  # over the lines booked in the invoice's currency
    hub_total_incl_vat: Decimal
    # the basis total to the currency's minor unit, half-up, as an invoice states amounts
    hub_total_rounded: Decimal
    delta: Decimal  # invoice − hub_total_rounded
    lines: tuple[InvoiceLine, ...]
    other_currency: tuple[str, ...]  # keys booked in another currency (not in the totals)
    duplicates: tuple[DuplicateRow, ...]

    @property
    def all_matched(self) -> bool:
        missing = any(line.cdr_key is None for line in self.lines)
        return self.delta == 0 and not (missing or self.other_currency or self.duplicates)

    def as_json(self) -> dict[str, Any]:
        body = {f.name: plain(getattr(self, f.name)) for f in fields(self)}
        return {
            "reconcile_version": RECONCILE_JSON_VERSION,
            "all_matched": self.all_matched,
            **body,
        }
