"""One archived record's recorded outcome against its replayed one: the verdict.

- booked both times: `same` when every amount (excl. VAT, incl. VAT, the hub's fee) is equal,
  else `amount_changed` with each component that moved and the causes: the tariff version
  (by content hash), the agreement version, the time zone differ from the booking's; none
  of them: `engine_changed` (the same inputs priced otherwise: the code changed);
- booked (or a duplicate), now rejected: `now_rejected`, with the reason;
- rejected, now booked: `now_booked`;
- rejected both times for the same reason, or a duplicate both times: `same`; anything else
  (another reason, booked → duplicate, duplicate → booked): `outcome_changed`.
"""

from __future__ import annotations

from settlement.clearing.outcome import Booked, Duplicate, Outcome
from settlement.replay.model import (
    COMPONENTS,
    Cause,
    Change,
    ComponentDelta,
    OriginalOutcome,
    PricedWith,
    ReplayedRecord,
    Verdict,
)


def verdict(record: ReplayedRecord, replayed: Outcome) -> Verdict:
    original = record.original
    if isinstance(replayed, Booked):
        transaction = replayed.transaction
        parties = (str(replayed.cpo), str(replayed.emsp), replayed.cdr.currency)
        key = str(transaction.cdr_key)
        if original.outcome is OriginalOutcome.REJECTED:
            return Verdict(record, Change.NOW_BOOKED, replayed, key, *parties)
        if original.outcome is OriginalOutcome.DUPLICATE:  # its key is booked already
            return Verdict(record, Change.OUTCOME_CHANGED, replayed, key, *parties)
        deltas = _deltas(record, replayed)
        if not deltas:
            return Verdict(record, Change.SAME, replayed, key, *parties)
        causes = causes_of(original.priced_with, PricedWith.of_trace(replayed.entry.trace))
        return Verdict(record, Change.AMOUNT_CHANGED, replayed, key, *parties, causes, deltas)
    known = (original.cdr_key, original.cpo, original.emsp, original.currency)
    if isinstance(replayed, Duplicate):
        same = original.outcome is OriginalOutcome.DUPLICATE
        return Verdict(record, Change.SAME if same else Change.OUTCOME_CHANGED, replayed, *known)
    reason = str(replayed.reason)
    if original.outcome is not OriginalOutcome.REJECTED:
        change = Change.NOW_REJECTED
    else:
        change = Change.SAME if reason == original.reason else Change.OUTCOME_CHANGED
    return Verdict(
        record,
        change,
        replayed,
        original.cdr_key if replayed.cdr_key is None else str(replayed.cdr_key),
        original.cpo or (None if replayed.submitter is None else str(replayed.submitter)),
        original.emsp,
        original.currency,
        reason=reason,
        message=replayed.message,
    )


def _deltas(record: ReplayedRecord, replayed: Booked) -> tuple[ComponentDelta, ...]:
    booked = record.original.amounts
    assert booked is not None, f"archive {record.archive_id}: a booking without its amounts"
    now = replayed.entry.amounts
    pairs = zip(
        COMPONENTS,
        (booked.excl_vat, booked.incl_vat, booked.fee),
        (now.excl_vat, now.incl_vat, now.fee),
        strict=True,
    )
    return tuple(ComponentDelta(name, old, new) for name, old, new in pairs if old != new)


def causes_of(booked: PricedWith | None, replayed: PricedWith) -> tuple[Cause, ...]:
    """Which inputs differ; none: the engine (a booking whose trace is not stored names
    no inputs, so every input counts as changed)."""
    if booked is None:
        return (Cause.TARIFF_VERSION, Cause.AGREEMENT, Cause.TIME_ZONE)
    causes = []
    if booked.tariff_hash != replayed.tariff_hash:
        causes.append(Cause.TARIFF_VERSION)
    if booked.agreement != replayed.agreement:
        causes.append(Cause.AGREEMENT)
    if booked.time_zone != replayed.time_zone:
        causes.append(Cause.TIME_ZONE)
    return tuple(causes) or (Cause.ENGINE,)
