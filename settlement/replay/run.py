"""The replay: archived records decided again, in archive order, by the worker's own batch
decision (`settlement.clearing.batch.decide_batch`), and each compared with its outcome.

Records are decided in the batches the worker decided them in (one `decided_at` each), with
that moment as the decision's `now` (plausibility and proof keys judge a record at its
intake, so an old CDR does not turn implausible by being replayed) and the reference view
the caller gives for it: the hub's reference data as of that moment (`as-booked`), as it is
now (`current`) or as of a chosen moment (`as-of`).

The ledger a record is decided against is the ledger without the replayed records' own
bookings (what the caller's `before` returns: bookings made by records outside the replay)
plus the bookings the replay itself makes as it goes, carried from batch to batch
(`ledger_after`): a credit meets the charge it reverses, a re-send is a duplicate of the
first, exactly as when they were cleared. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

from schemas.hub.party import CdrKey
from settlement.clearing.batch import (
    ClearingReferences,
    decide_batch,
    decode_submitted,
    ledger_after,
    ledger_keys,
)
from settlement.clearing.decode import Decoded
from settlement.clearing.entry import Booking
from settlement.clearing.outcome import Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.replay.compare import verdict
from settlement.replay.model import ReplayedRecord, Verdict

Views = Callable[[datetime], ClearingReferences]  # decided_at -> the reference view
Before = Callable[[set[CdrKey]], Mapping[CdrKey, Booking]]  # keys -> bookings before


@dataclass(slots=True)
class Replay:
    """One replay run: feed it the archived records chunk by chunk, in archive order."""

    views: Views
    before: Before
    hub_keys: Mapping[str, bytes]
    limits: PlausibilityLimits
    _ledger: dict[CdrKey, Booking] = field(default_factory=dict)
    _asked: set[CdrKey] = field(default_factory=set)

    def chunk(self, records: Sequence[ReplayedRecord]) -> list[Verdict]:
        """The verdicts of `records` (the next ones in archive order), in order."""
        decoded = [decode_submitted(record) for record in records]
        wanted = ledger_keys(decoded) - self._asked
        if wanted:
            self._ledger.update(self.before(wanted))
            self._asked |= wanted
        verdicts: list[Verdict] = []
        pairs = zip(records, decoded, strict=True)
        for decided_at, group in groupby(pairs, key=lambda pair: pair[0].original.decided_at):
            verdicts.extend(self._batch(decided_at, list(group)))
        return verdicts

    def _batch(
        self, decided_at: datetime, batch: list[tuple[ReplayedRecord, Decoded | Rejected]]
    ) -> Iterator[Verdict]:
        held = {
            key: self._ledger[key]
            for key in ledger_keys(item for _, item in batch)
            if key in self._ledger
        }
        view = self.views(decided_at)
        decisions = decide_batch(batch, decided_at, self.limits, self.hub_keys, view, held)
        self._ledger.update(ledger_after(held, decisions))
        for (record, _), decision in zip(batch, decisions, strict=True):
            yield verdict(record, decision.outcome)
