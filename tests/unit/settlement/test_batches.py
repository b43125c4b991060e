"""Periods, rounding entries, checksums and the batch lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.batch import BatchState
from schemas.hub.ledger import Side
from settlement.batches.checksum import body_digest, posting_line
from settlement.batches.lifecycle import BatchTransitionRefused, transition
from settlement.batches.periods import closable_before, period_of
from settlement.batches.rounding import rounding_entry


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "kind", "zone", "start", "end"),
    [
        (utc(2025, 5, 10, 12), SettlementPeriod.DAILY, "UTC", utc(2025, 5, 10), utc(2025, 5, 11)),
        (
            utc(2025, 5, 10, 23),
            SettlementPeriod.DAILY,
            "Europe/Amsterdam",
            utc(2025, 5, 10, 22),
            utc(2025, 5, 11, 22),
        ),
        # the spring-forward day in Amsterdam is 23 hours long
        (
            utc(2025, 3, 30, 12),
            SettlementPeriod.DAILY,
            "Europe/Amsterdam",
            utc(2025, 3, 29, 23),
            utc(2025, 3, 30, 22),
        ),
        (utc(2025, 5, 14), SettlementPeriod.WEEKLY, "UTC", utc(2025, 5, 12), utc(2025, 5, 19)),
        (
            utc(2025, 12, 31, 23, 30),
            SettlementPeriod.MONTHLY,
            "Europe/Amsterdam",
            utc(2025, 12, 31, 23),
            utc(2026, 1, 31, 23),
        ),
        (utc(2025, 2, 10), SettlementPeriod.MONTHLY, "UTC", utc(2025, 2, 1), utc(2025, 3, 1)),
    ],
)
def test_period_boundaries(
    moment: datetime, kind: SettlementPeriod, zone: str, start: datetime, end: datetime
) -> None:
    period = period_of(moment, kind, zone)
    assert (period.start, period.end) == (start, end)


def test_a_period_closes_only_after_its_end_plus_grace() -> None:
    grace = timedelta(hours=2)
    cutoff = closable_before(utc(2025, 6, 1, 1, 59), grace, SettlementPeriod.MONTHLY, "UTC")
    assert not utc(2025, 5, 1) < cutoff
    cutoff = closable_before(utc(2025, 6, 1, 2), grace, SettlementPeriod.MONTHLY, "UTC")
    assert utc(2025, 5, 1) < cutoff and not utc(2025, 6, 1) < cutoff


@pytest.mark.parametrize(
    ("net", "currency", "side", "amount"),
    [
        ("12.3456", "EUR", Side.CREDIT, "0.0044"),
        ("12.3450", "EUR", Side.CREDIT, "0.0050"),  # half-up, never banker's
        ("-7.0050", "EUR", Side.DEBIT, "0.0050"),  # half-up is away from zero
        ("-7.0049", "EUR", Side.CREDIT, "0.0049"),
        ("100.4999", "JPY", Side.DEBIT, "0.4999"),
        ("1.2345", "BHD", Side.CREDIT, "0.0005"),
    ],
)
def test_rounding_entry_brings_the_net_to_the_minor_unit(
    net: str, currency: str, side: Side, amount: str
) -> None:
    entry = rounding_entry(Decimal(net), currency)
    assert entry is not None and (entry.partner_side, entry.amount) == (side, Decimal(amount))
    assert entry.hub_side is not entry.partner_side


def test_no_rounding_entry_when_already_in_minor_units() -> None:
    assert rounding_entry(Decimal("12.3400"), "EUR") is None
    assert rounding_entry(Decimal("-3"), "JPY") is None


def test_checksum_lines_are_stable() -> None:
    line = posting_line(7, "0b9f", "DEBIT", Decimal("1.5000"))
    assert line == "7|0b9f|DEBIT|1.5000"
    assert body_digest([line]) == body_digest(iter([line]))


def test_lifecycle_allows_only_its_transitions() -> None:
    assert transition(BatchState.OPEN, BatchState.CLOSING) is BatchState.CLOSING
    assert transition(BatchState.CLOSING, BatchState.CLOSED) is BatchState.CLOSED
    assert transition(BatchState.FAILED, BatchState.OPEN) is BatchState.OPEN
    for target in BatchState:
        with pytest.raises(BatchTransitionRefused):
            transition(BatchState.CLOSED, target)
    with pytest.raises(BatchTransitionRefused):
        transition(BatchState.OPEN, BatchState.CLOSED)
