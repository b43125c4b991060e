"""Settlement batches: a partner's postings in one currency and period, closed once.

State machine (guarded by settlement/, stored in PostgreSQL): OPEN -> CLOSING -> CLOSED, or
CLOSING -> FAILED (and back to OPEN by a retry). A CLOSED batch is immutable; its totals
equal the sum of its postings, and `checksum` fingerprints the postings it closed over.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from schemas.base import HubModel, rule_error
from schemas.hub.party import PartyRef
from schemas.ocpi.types import Amount, CurrencyCode, DateTime


class BatchState(StrEnum):
    """Lifecycle of a settlement batch."""

    OPEN = "OPEN"  # accepting postings
    CLOSING = "CLOSING"  # closing in progress; no new postings
    CLOSED = "CLOSED"  # final and immutable
    FAILED = "FAILED"  # closing failed; nothing half-closed, may be retried


class BatchTotals(HubModel):
    """Sums of a batch's postings on the partner's account."""

    debit: Amount = Decimal("0")
    credit: Amount = Decimal("0")
    rounding: Amount = Decimal("0")  # booked on hub:rounding to reach the minor unit

    @property
    def net(self) -> Decimal:
        """Credit minus debit: positive when the hub owes the partner."""
        return self.credit - self.debit


class SettlementBatch(HubModel):
    """One partner's settlement for one currency and period [period_start, period_end)."""

    batch_id: Annotated[str, Field(min_length=1, max_length=128)]
    partner: PartyRef
    currency: CurrencyCode
    period_start: DateTime
    period_end: DateTime
    state: BatchState = BatchState.OPEN
    totals: BatchTotals = BatchTotals()
    postings_count: Annotated[int, Field(ge=0)] = 0
    checksum: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.period_end <= self.period_start:
            raise rule_error("period_end", "date_order", "must be after period_start")
        if self.state is BatchState.CLOSED and self.checksum is None:
            raise rule_error("checksum", "missing", "field required for a CLOSED batch")
        return self
