"""Batch rounding: the payable amount to the currency's minor unit, the difference booked.

A batch's net (credit - debit on the partner's account) is exact at 4 decimals. What the hub
pays or collects is ``round_minor_unit(net)`` (half-up, settlement/money.py step 4). The
difference is booked as one balanced ROUNDING transaction inside the batch:

    net 12.3456 EUR -> payable 12.35, difference +0.0044:
        CREDIT partner:NL*TNM  0.0044     (a member of the batch: its net becomes 12.35)
        DEBIT  hub:rounding    0.0044     (the hub absorbs the difference)

    net -7.0050 EUR -> payable -7.01, difference -0.0050:
        DEBIT  partner:DE*EMS  0.0050
        CREDIT hub:rounding    0.0050

So the batch's totals still equal the sum of its postings, and the ledger still balances.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import AccountId, Side, TransactionId
from settlement.money import RATING_CONTEXT, round_minor_unit, round_posting

ROUNDING_NAMESPACE: Final = uuid.UUID("5f0c3f0e-6f8a-4d59-9a57-2b6f1c9d7e21")
"""uuid5 namespace of rounding transaction ids."""


@dataclass(frozen=True, slots=True)
class RoundingEntry:
    """The partner's leg of a rounding transaction (hub:rounding takes the opposite side)."""

    partner_side: Side
    amount: Decimal  # positive, at most half a minor unit

    @property
    def hub_side(self) -> Side:
        return Side.DEBIT if self.partner_side is Side.CREDIT else Side.CREDIT

    @property
    def signed(self) -> Decimal:
        """The difference as seen by the partner: + credited, - debited."""
        return self.amount if self.partner_side is Side.CREDIT else -self.amount


def rounding_entry(net: Decimal, currency: str) -> RoundingEntry | None:
    """None when the net is already in minor units."""
    payable = round_minor_unit(net, currency)
    difference = round_posting(RATING_CONTEXT.subtract(payable, net))
    if difference == 0:
        return None
    side = Side.CREDIT if difference > 0 else Side.DEBIT
    entry = RoundingEntry(side, abs(difference))
    rounded = RATING_CONTEXT.add(net, entry.signed)
    assert round_minor_unit(rounded, currency) == rounded, (net, entry)
    return entry


def rounding_transaction_id(
    account: AccountId, currency: str, period_kind: SettlementPeriod, period_start: datetime
) -> TransactionId:
    """Deterministic id of a batch's rounding transaction (one per batch, ever)."""
    start = period_start.astimezone(UTC).isoformat()
    name = f"{account}|{currency}|{period_kind.value}|{start}"
    return TransactionId(str(uuid.uuid5(ROUNDING_NAMESPACE, name)))
