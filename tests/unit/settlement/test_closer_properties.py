"""Property tests of the closer's rules (settlement.batches.closer), with invariants as
named predicates: random postings arriving over random closes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import HUB_FEES, Side
from settlement.batches import closer
from settlement.batches.model import ClosedBatch, ClosePolicy, LedgerPosting
from settlement.money import round_minor_unit

START = datetime(2025, 3, 1, tzinfo=UTC)
PARTNERS = ("partner:NL*TNM", "partner:DE*EMS", "partner:BE*EMB")


@dataclass(frozen=True)
class Cdr:
    cpo: int
    emsp: int
    amount_units: int  # 1/10,000 of the currency
    fee_units: int
    minute: int
    kind: SettlementPeriod
    currency: str
    arrives_at_step: int


cdrs = st.builds(
    Cdr,
    cpo=st.integers(0, 2),
    emsp=st.integers(0, 2),
    amount_units=st.integers(1, 10_000_000),
    fee_units=st.integers(0, 5_000),
    minute=st.integers(0, 60 * 24 * 70),
    kind=st.sampled_from(list(SettlementPeriod)),
    currency=st.sampled_from(["EUR", "JPY", "BHD"]),
    arrives_at_step=st.integers(0, 4),
)
zones = st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata"])


def _postings(cdr: Cdr, index: int, first_id: int) -> list[LedgerPosting]:
    amount = Decimal(cdr.amount_units).scaleb(-4)
    fee = min(Decimal(cdr.fee_units).scaleb(-4), amount)
    when = START + timedelta(minutes=cdr.minute)
    transaction = f"t{index}"
    legs = [
        (PARTNERS[cdr.emsp], Side.DEBIT, amount),
        (PARTNERS[cdr.cpo], Side.CREDIT, amount - fee),
        (HUB_FEES, Side.CREDIT, fee),
    ]
    legs = [leg for leg in legs if leg[2] > 0]
    return [
        LedgerPosting(first_id + n, transaction, account, side, value, cdr.currency, when, cdr.kind)
        for n, (account, side, value) in enumerate(legs)
    ]


# Invariants -----------------------------------------------------------------------------


def each_posting_in_at_most_one_batch(
    ledger: Sequence[LedgerPosting], batches: Sequence[ClosedBatch]
) -> bool:
    return all(sum(closer.is_member(p, b) for b in batches) <= 1 for p in ledger)


def totals_match_members(ledger: Sequence[LedgerPosting], batches: Sequence[ClosedBatch]) -> bool:
    for batch in batches:
        members = closer.members(batch, ledger)
        debit = sum((p.amount for p in members if p.side is Side.DEBIT), Decimal(0))
        credit = sum((p.amount for p in members if p.side is Side.CREDIT), Decimal(0))
        late = [p for p in members if p.value_time < batch.period_start]
        if (len(members), len(late), debit, credit) != (
            batch.totals.postings,
            batch.totals.late_postings,
            batch.totals.debit,
            batch.totals.credit,
        ):
            return False
    return True


def ledger_nets_to_zero(ledger: Sequence[LedgerPosting]) -> bool:
    per_currency: defaultdict[str, Decimal] = defaultdict(Decimal)
    for posting in ledger:
        per_currency[posting.currency] += posting.signed
    return all(total == 0 for total in per_currency.values())


def payable_in_minor_units(batches: Sequence[ClosedBatch]) -> bool:
    return all(round_minor_unit(b.net, b.key.currency) == b.net for b in batches)


def late_postings_in_next_open_batch(
    ledger: Sequence[LedgerPosting], batches: Sequence[ClosedBatch]
) -> bool:
    for batch in batches:
        for posting in closer.members(batch, ledger):
            if posting.value_time >= batch.period_start:
                continue
            earlier = [
                b for b in batches if b.key == batch.key and b.period_start < batch.period_start
            ]
            # its own period was closed before it arrived, and this is the key's first batch after
            if not earlier or max(b.watermark for b in earlier) >= posting.posting_id:
                return False
            if max(b.period_end for b in earlier) != batch.period_start:
                return False
    return True


@settings(max_examples=60, deadline=None)
@given(
    cdr_list=st.lists(cdrs, min_size=1, max_size=40),
    gaps_h=st.lists(st.integers(1, 24 * 40), min_size=5, max_size=5),
    zone=zones,
    grace_h=st.integers(0, 48),
)
def test_incremental_closes_hold_every_invariant(
    cdr_list: list[Cdr], gaps_h: list[int], zone: str, grace_h: int
) -> None:
    policy = ClosePolicy(time_zone=zone, grace=timedelta(hours=grace_h))
    ledger: list[LedgerPosting] = []
    batches: list[ClosedBatch] = []
    as_of = START
    for step, gap in enumerate(gaps_h):
        for index, cdr in enumerate(cdr_list):
            if cdr.arrives_at_step == step:
                ledger.extend(_postings(cdr, index, len(ledger) + 1))
        as_of += timedelta(hours=gap)
        result = closer.close(ledger, batches, as_of, policy, len(ledger))
        ledger.extend(result.rounding_postings)
        batches.extend(result.batches)
        assert result.watermark == len(ledger)
        again = closer.close(ledger, batches, as_of, policy, len(ledger))
        assert again.batches == () and again.rounding_postings == ()  # re-closing changes nothing
    assert each_posting_in_at_most_one_batch(ledger, batches)
    assert totals_match_members(ledger, batches)
    assert ledger_nets_to_zero(ledger)
    assert payable_in_minor_units(batches)
    assert late_postings_in_next_open_batch(ledger, batches)
    # far enough in the future, every partner posting is in exactly one batch
    final = closer.close(ledger, batches, as_of + timedelta(days=500), policy, len(ledger))
    ledger.extend(final.rounding_postings)
    batches.extend(final.batches)
    partner = [p for p in ledger if p.account.startswith("partner:")]
    assert all(closer.batch_of(p, batches) is not None for p in partner)
    assert totals_match_members(ledger, batches) and ledger_nets_to_zero(ledger)
    hub = sum((p.signed for p in ledger if not p.account.startswith("partner:")), Decimal(0))
    assert sum((b.net for b in batches), Decimal(0)) + hub == 0
