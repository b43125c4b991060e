"""The settlement closer's rules as pure functions (the reference for the SQL closer).

Given the ledger's postings up to a watermark (every posting id at or below it committed and
visible), the batches already closed, an ``as_of`` instant and the policy (time zone, grace):

1. Per key (partner account, currency, period kind), the latest closed batch gives
   ``closed_through`` (its period end) and its watermark.
2. A posting not yet in a batch is *late* when its value_time is before ``closed_through``:
   its period was closed before it arrived. A late posting goes into the key's next open
   batch: the period starting at ``closed_through``. Any other posting goes into the period
   of its value_time.
3. Every (key, period) whose period ended at least ``grace`` before ``as_of`` closes: totals,
   a rounding transaction when the net is not in minor units, a checksum (version 1, over
   the postings: this core sees postings only; the SQL closer stores checksum v2 over the
   transactions' figures too, and seals it with the hub key).

Example: TNM's MONTHLY key closed May (watermark 100). On 2025-06-03 a posting for 30 May
arrives (id 120): it is late and belongs to June's batch, closed after 1 July + grace, where
the statement flags it.

Closing again with nothing new changes nothing. ``members`` and ``batch_of`` state the
membership rule, by which a posting is in at most one batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.hub.ledger import HUB_ROUNDING, Side
from settlement.batches.checksum import batch_checksum, body_digest, posting_line, rounding_line
from settlement.batches.model import (
    PARTNER_PREFIX,
    BatchKey,
    ClosedBatch,
    ClosePolicy,
    LedgerPosting,
    Totals,
)
from settlement.batches.periods import closable_before, following_start, period_start
from settlement.batches.rounding import rounding_entry, rounding_transaction_id
from settlement.money import sum_exact


@dataclass(frozen=True, slots=True)
class KeyState:
    """A key's latest closed batch: where its next open period starts."""

    closed_through: datetime
    watermark: int


@dataclass(frozen=True, slots=True)
class CloseResult:
    batches: tuple[ClosedBatch, ...]
    rounding_postings: tuple[LedgerPosting, ...]  # partner leg and hub:rounding leg per batch
    watermark: int  # after the rounding postings


def key_states(batches: Iterable[ClosedBatch]) -> dict[BatchKey, KeyState]:
    latest: dict[BatchKey, ClosedBatch] = {}
    for batch in batches:
        current = latest.get(batch.key)
        if current is None or batch.period_start > current.period_start:
            latest[batch.key] = batch
    return {key: KeyState(b.period_end, b.watermark) for key, b in latest.items()}


def is_member(posting: LedgerPosting, batch: ClosedBatch) -> bool:
    """The membership rule (same as SQL ``settlement_batch_postings``)."""
    if posting.key != batch.key or posting.posting_id > batch.watermark:
        return False
    if batch.period_start <= posting.value_time < batch.period_end:
        return True
    return posting.value_time < batch.period_start and posting.posting_id > batch.prior_watermark


def members(batch: ClosedBatch, postings: Iterable[LedgerPosting]) -> tuple[LedgerPosting, ...]:
    return tuple(sorted((p for p in postings if is_member(p, batch)), key=_by_id))


def batch_of(posting: LedgerPosting, batches: Iterable[ClosedBatch]) -> ClosedBatch | None:
    found = [batch for batch in batches if is_member(posting, batch)]
    assert len(found) <= 1, ("posting in more than one batch", posting, found)
    return found[0] if found else None


def _by_id(posting: LedgerPosting) -> int:
    return posting.posting_id


def _unbatched(posting: LedgerPosting, state: KeyState | None) -> bool:
    if state is None:
        return True
    return posting.value_time >= state.closed_through or posting.posting_id > state.watermark


def _target_start(posting: LedgerPosting, state: KeyState | None, policy: ClosePolicy) -> datetime:
    if state is not None and posting.value_time < state.closed_through:
        return state.closed_through  # late: the key's next open period
    return period_start(posting.value_time, posting.period_kind, policy.time_zone)


def closable_groups(
    postings: Iterable[LedgerPosting],
    batches: Sequence[ClosedBatch],
    as_of: datetime,
    policy: ClosePolicy,
    watermark: int,
) -> dict[tuple[BatchKey, datetime], list[LedgerPosting]]:
    """Unbatched postings up to ``watermark``, grouped by the (key, period) they close into,
    only where that period may close at ``as_of``."""
    states = key_states(batches)
    groups: defaultdict[tuple[BatchKey, datetime], list[LedgerPosting]] = defaultdict(list)
    for posting in postings:
        if posting.posting_id > watermark or not posting.account.startswith(PARTNER_PREFIX):
            continue
        state = states.get(posting.key)
        if not _unbatched(posting, state):
            continue
        start = _target_start(posting, state, policy)
        cutoff = closable_before(as_of, policy.grace, posting.period_kind, policy.time_zone)
        if start < cutoff:
            groups[(posting.key, start)].append(posting)
    return groups


def _totals(group: Sequence[LedgerPosting], start: datetime) -> Totals:
    late = [p for p in group if p.value_time < start]
    return Totals(
        postings=len(group),
        late_postings=len(late),
        debit=sum_exact([p.amount for p in group if p.side is Side.DEBIT]),
        credit=sum_exact([p.amount for p in group if p.side is Side.CREDIT]),
        late_net=sum_exact([p.signed for p in late]),
    )


def close(
    postings: Iterable[LedgerPosting],
    batches: Sequence[ClosedBatch],
    as_of: datetime,
    policy: ClosePolicy,
    watermark: int,
) -> CloseResult:
    """Close every closable (key, period); rounding postings get ids above ``watermark``."""
    groups = closable_groups(postings, batches, as_of, policy, watermark)
    states = key_states(batches)
    prepared = []
    rounding_postings: list[LedgerPosting] = []
    next_id = watermark
    for key, start in sorted(
        groups, key=lambda item: (item[0].account, item[0].currency, item[0].period_kind, item[1])
    ):
        group = sorted(groups[(key, start)], key=_by_id)
        end = following_start(start, key.period_kind, policy.time_zone)
        totals = _totals(group, start)
        entry = rounding_entry(totals.net, key.currency)
        rounding_line_text = rounding_line(None, None, None)
        if entry is not None:
            transaction = rounding_transaction_id(key.account, key.currency, key.period_kind, start)
            for account, side in (
                (key.account, entry.partner_side),
                (HUB_ROUNDING, entry.hub_side),
            ):
                next_id += 1
                rounding_postings.append(
                    LedgerPosting(
                        next_id,
                        transaction,
                        account,
                        side,
                        entry.amount,
                        key.currency,
                        start,
                        key.period_kind,
                    )
                )
            totals = Totals(
                postings=totals.postings + 1,
                late_postings=totals.late_postings,
                debit=totals.debit + (entry.amount if entry.partner_side is Side.DEBIT else 0),
                credit=totals.credit + (entry.amount if entry.partner_side is Side.CREDIT else 0),
                late_net=totals.late_net,
            )
            rounding_line_text = rounding_line(transaction, entry.partner_side.value, entry.amount)
        body = body_digest(
            posting_line(p.posting_id, p.transaction_id, p.side.value, p.amount) for p in group
        )
        signed = entry.signed if entry is not None else sum_exact([])
        prepared.append((key, start, end, totals, signed, body, rounding_line_text))
    closed: list[ClosedBatch] = []
    prior = {key: state.watermark for key, state in states.items()}
    for key, start, end, totals, signed, body, line in prepared:
        prior_watermark = prior.get(key, 0)
        checksum = batch_checksum(key, start, end, next_id, prior_watermark, body, line)
        closed.append(
            ClosedBatch(key, start, end, next_id, prior_watermark, totals, signed, checksum)
        )
        prior[key] = next_id
    return CloseResult(tuple(closed), tuple(rounding_postings), next_id)
