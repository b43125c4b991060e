"""What `replay --apply` books for a verdict, as values (settlement.store.replay_apply writes
them): nothing booked is changed, a correction is new transactions linked to what it
corrects.

- `amount_changed`: two ADJUSTMENT transactions, the reversal of the booking in force (the
  original charge, or the last correction's charge) and the new charge as the replay priced
  it, both in the open period (value time: the run's);
- `now_booked`: the CHARGE clearing would have booked, under the CDR's own key.

A correction is identified by what it corrects and its reference version (the replayed
price's inputs and amounts): its transaction ids derive from both, and PostgreSQL books one
correction per (record, booking corrected, reference version). Applying the same replay
twice books nothing the second time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from settlement.clearing.outcome import Booked
from settlement.replay.model import Change, PricedWith, Verdict

_NAMESPACE: Final = uuid.UUID("5d1c3a52-8f3e-4c55-9a4e-7c0b7d9e2a61")  # replay corrections
CORRECTED: Final = (Change.AMOUNT_CHANGED, Change.NOW_BOOKED)


def reference_version(booked: Booked) -> str:
    """The replayed price's identity: the tariff version, agreement version and time zone
    that priced it, and the amounts they gave (the engine's part)."""
    priced = PricedWith.of_trace(booked.entry.trace)
    amounts = booked.entry.amounts
    text = "|".join(
        str(part)
        for part in (
            priced.tariff_hash,
            priced.agreement,
            priced.time_zone,
            amounts.excl_vat,
            amounts.incl_vat,
            amounts.fee,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Correction:
    """One CDR's correction: what it books and what it corrects."""

    verdict: Verdict
    booked: Booked  # the replayed booking
    reference_version: str
    corrects: str | None  # the transaction in force before (amount_changed)
    reversal_id: str | None  # the ADJUSTMENT reversing it (amount_changed)
    charge_id: str  # the new ADJUSTMENT charge, or the now_booked CHARGE

    @property
    def change(self) -> Change:
        return self.verdict.change

    @property
    def reversal_key(self) -> str:
        return f"REPLAY*{self.reversal_id}"

    @property
    def charge_key(self) -> str:
        return f"REPLAY*{self.charge_id}"


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def correction(verdict: Verdict) -> Correction | None:
    """The correction a verdict calls for; None for one that calls for none."""
    booked = verdict.replayed
    if verdict.change not in CORRECTED or not isinstance(booked, Booked):
        return None
    version = reference_version(booked)
    if verdict.change is Change.NOW_BOOKED:
        charge_id = str(booked.transaction.transaction_id)
        return Correction(verdict, booked, version, None, None, charge_id)
    corrects = verdict.record.original.transaction_id
    assert corrects is not None, "an amount_changed CDR was booked"
    reversal_id = _id(corrects, version, "reversal")
    return Correction(verdict, booked, version, corrects, reversal_id, _id(corrects, version))


def corrections(verdicts: Iterable[Verdict]) -> list[Correction]:
    return [c for c in map(correction, verdicts) if c is not None]
