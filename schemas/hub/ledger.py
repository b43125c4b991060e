"""Double-entry ledger values: accounts, postings and balanced transactions.

A posting moves a positive amount on one side of one account; a transaction groups postings
whose debits equal their credits in every currency (invariant 4). A CDR is booked as one
CHARGE transaction; a credit CDR as one REVERSAL that mirrors the original exactly.

Example: an eMSP owes 10.00 for a CDR of CPO TNM; the hub keeps a 0.15 fee::

    DEBIT  partner:DE*EMS  10.00 EUR
    CREDIT partner:NL*TNM   9.85 EUR
    CREDIT hub:fees         0.15 EUR

Accounts are strings: `partner:<CC*PID>` for a party, `hub:<name>` for the hub's own
(`hub:fees`, `hub:rounding`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, NewType, Self

from pydantic import AfterValidator, Field, model_validator

from schemas.base import HubModel, rule_error
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.types import Amount, CurrencyCode, DateTime

AccountId = NewType("AccountId", str)
# A ledger transaction's id: a UUID in canonical text (uuid5 of the CDR key and content hash
# for a booking), as ledger_transaction.transaction_id prints it. Text, not uuid.UUID: it is
# compared, keyed and serialised as text on the hot path, and a NewType costs nothing there.
TransactionId = NewType("TransactionId", str)
HUB_FEES: Final = AccountId("hub:fees")
HUB_ROUNDING: Final = AccountId("hub:rounding")
# Ledger amounts are numeric(20, 4) in PostgreSQL: 16 digits before the point. OCPI amounts
# may have 20 digits, so a CDR can price (or declare) more than the ledger can hold.
LEDGER_AMOUNT_LIMIT: Final = Decimal("1E16")
POSTINGS_MAX: Final = 64  # a CDR books a handful; the bound catches runaway splits

_ACCOUNT = re.compile(r"^(partner:[A-Z]{2}\*[A-Z0-9]{3}|hub:[a-z][a-z0-9_]{0,31})$")


def partner_account(party: PartyRef) -> AccountId:
    """The ledger account of a CPO or eMSP."""
    return AccountId(f"partner:{party}")


def _account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise ValueError("must be partner:CC*PID or hub:<name>")
    return value


Account = Annotated[str, AfterValidator(_account)]
PositiveAmount = Annotated[Amount, Field(gt=0)]


class Side(StrEnum):
    """Side of a posting."""

    DEBIT = "DEBIT"  # the account owes / receives value
    CREDIT = "CREDIT"  # the account is owed / gives value


class TransactionKind(StrEnum):
    """Why a transaction exists."""

    CHARGE = "CHARGE"  # books a CDR
    REVERSAL = "REVERSAL"  # reverses a CHARGE exactly (credit CDR or correction)
    ROUNDING = "ROUNDING"  # a settlement batch's payable rounded to the minor unit
    ADJUSTMENT = "ADJUSTMENT"  # the hub's settlement of an accepted dispute (DISPUTE*<id>)


class Posting(HubModel):
    """One line of a transaction: a positive amount on one side of one account."""

    account: Account
    side: Side
    amount: PositiveAmount
    currency: CurrencyCode


class Transaction(HubModel):
    """A balanced set of postings for one CDR, identified deterministically.

    `transaction_id` and `content_hash` come from the producer (CDR key + content hash), so
    a redelivered CDR produces the same transaction and books nothing twice.
    """

    transaction_id: Annotated[TransactionId, Field(min_length=1, max_length=128)]
    cdr_key: CdrKey
    kind: TransactionKind
    reverses: Annotated[TransactionId, Field(min_length=1, max_length=128)] | None = None
    # Empty for a zero-value CDR (free charging, no fee): cleared and recorded, nothing owed.
    postings: Annotated[tuple[Posting, ...], Field(max_length=POSTINGS_MAX)]
    content_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    occurred_at: DateTime

    @model_validator(mode="after")
    def _balanced_and_linked(self) -> Self:
        imbalance = self.imbalance()
        if imbalance:
            listed = ", ".join(f"{currency} {amount}" for currency, amount in imbalance.items())
            raise rule_error(
                "postings",
                "unbalanced",
                f"debits must equal credits per currency (off by {listed})",
            )
        if self.kind is TransactionKind.REVERSAL and self.reverses is None:
            raise rule_error("reverses", "missing", "field required for a REVERSAL")
        if self.kind is TransactionKind.CHARGE and self.reverses is not None:
            raise rule_error("reverses", "unexpected", "must be absent for a CHARGE")
        return self

    def as_data(self) -> dict[str, Any]:
        """`model_dump(mode="python", exclude_none=True)`, written out: the clearing agent
        emits one per CDR, and a test holds the two equal."""
        data: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "cdr_key": {
                "party": {
                    "country_code": self.cdr_key.party.country_code,
                    "party_id": self.cdr_key.party.party_id,
                },
                "cdr_id": self.cdr_key.cdr_id,
            },
            "kind": self.kind,
        }
        if self.reverses is not None:
            data["reverses"] = self.reverses
        data["postings"] = tuple(
            {"account": p.account, "side": p.side, "amount": p.amount, "currency": p.currency}
            for p in self.postings
        )
        data["content_hash"] = self.content_hash
        data["occurred_at"] = self.occurred_at
        return data

    def imbalance(self) -> dict[str, Decimal]:
        """Debits minus credits per currency, only where not zero."""
        net: defaultdict[str, Decimal] = defaultdict(Decimal)
        for posting in self.postings:
            sign = 1 if posting.side is Side.DEBIT else -1
            net[posting.currency] += sign * posting.amount
        return {currency: amount for currency, amount in net.items() if amount != 0}
