"""Values of the settlement closer: ledger postings as it sees them, batch keys, closed batches.

A batch key is (partner account, currency, period kind): a partner settled DAILY under one
agreement and MONTHLY under another has two keys, each netted on its own grid. Within a key
every counterparty and both roles (CPO and eMSP) net into one position: the hub is the
central counterparty.

Sign convention on a partner account: ``net = credit - debit``, positive when the hub pays
the partner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import AccountId, Side, TransactionId

PARTNER_PREFIX: Final = "partner:"
"""Only partner accounts are settled; hub accounts (fees, rounding) are the hub's own books."""


@dataclass(frozen=True, slots=True)
class BatchKey:
    """What one chain of batches nets: a partner account in one currency and period kind."""

    account: AccountId
    currency: str
    period_kind: SettlementPeriod

    @property
    def partner(self) -> str:
        return self.account.removeprefix(PARTNER_PREFIX)


@dataclass(frozen=True, slots=True)
class LedgerPosting:
    """One row of ledger_posting, as the closer needs it."""

    posting_id: int
    transaction_id: TransactionId
    account: AccountId
    side: Side
    amount: Decimal
    currency: str
    value_time: datetime
    period_kind: SettlementPeriod

    @property
    def key(self) -> BatchKey:
        return BatchKey(self.account, self.currency, self.period_kind)

    @property
    def signed(self) -> Decimal:
        """Credit positive, debit negative (the partner's view)."""
        return self.amount if self.side is Side.CREDIT else -self.amount


@dataclass(frozen=True, slots=True)
class ClosePolicy:
    """Where period boundaries fall and how long after its end a period waits to close."""

    time_zone: str = "UTC"
    grace: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a batch's postings (amounts at 4 decimals, exact)."""

    postings: int
    late_postings: int
    debit: Decimal
    credit: Decimal
    late_net: Decimal

    @property
    def net(self) -> Decimal:
        return self.credit - self.debit


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    """A closed batch: its key, period, watermarks, totals (rounding included) and checksum.

    Members: postings of ``key`` with ``posting_id <= watermark`` and either value_time in
    [period_start, period_end) or (value_time < period_start and posting_id > prior_watermark).
    """

    key: BatchKey
    period_start: datetime
    period_end: datetime
    watermark: int
    prior_watermark: int
    totals: Totals
    rounding: Decimal  # signed, + credited to the partner; its posting is among the members
    checksum: str

    @property
    def net(self) -> Decimal:
        return self.totals.net
