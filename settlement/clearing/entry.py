"""A booking as the ledger takes it (`LedgerEntry`), and as the ledger holds it (`Booking`).

A `LedgerEntry` is everything one booked CDR writes: the balanced transaction with its
postings, the amounts of its ledger_transaction row, the settlement period its postings
fall in, and its traceability record. A `Booking` is what a later decision needs to know of
a CDR key already booked: to recognise an exact duplicate or a conflict, and to mirror a
charge exactly when a credit reverses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import Posting, Transaction, TransactionId, TransactionKind
from schemas.hub.party import CdrKey
from settlement.clearing.trace import ChargeTrace, Trace


@dataclass(frozen=True, slots=True)
class Amounts:
    """A transaction's settled amounts excl. and incl. VAT and the hub's fee (negative for
    a reversal)."""

    excl_vat: Decimal
    incl_vat: Decimal
    fee: Decimal

    def negated(self) -> Amounts:
        return Amounts(-self.excl_vat, -self.incl_vat, -self.fee)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One booked CDR as the ledger takes it."""

    transaction: Transaction  # with its postings
    amounts: Amounts
    settlement_period: SettlementPeriod  # the agreement's; a reversal's is its original's
    trace: Trace


@dataclass(frozen=True, slots=True)
class Booking:
    """A transaction the ledger holds for a CDR key."""

    transaction_id: TransactionId
    content_hash: str
    kind: TransactionKind
    reversed_by: TransactionId | None
    postings: tuple[Posting, ...]
    amounts: Amounts
    # what a reversal mirrors; None for a reversal, and for a charge whose stored record
    # clearing did not write (a credit of it is then the hub's internal error)
    trace: ChargeTrace | None

    @classmethod
    def of(cls, entry: LedgerEntry) -> Booking:
        """The booking an entry makes (not yet reversed)."""
        transaction = entry.transaction
        trace = entry.trace if isinstance(entry.trace, ChargeTrace) else None
        return cls(
            transaction.transaction_id,
            transaction.content_hash,
            transaction.kind,
            None,
            transaction.postings,
            entry.amounts,
            trace,
        )


class LedgerView(Protocol):
    def booking(self, cdr_key: CdrKey) -> Booking | None: ...
