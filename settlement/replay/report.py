"""A replay's report: the verdicts that say something, and totals per partner and currency.

Totals count every replayed record under its CPO and under its eMSP (role `CPO` / `EMSP`),
per change, and sum what applying the replay would book: the deltas of `amount_changed`
CDRs and the amounts of `now_booked` ones (a `now_rejected` CDR stays booked: a replay does
not undo a booking, a credit CDR does). Amounts are Decimal throughout, written as strings.

    >>> Totals().as_json()
    []
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from settlement.clearing.outcome import Booked
from settlement.replay.model import COMPONENTS, Change, Verdict

CSV_COLUMNS = (
    "archive_id",
    "topic",
    "partition",
    "offset",
    "cdr_key",
    "cpo",
    "emsp",
    "currency",
    "change",
    "causes",
    "booked_excl_vat",
    "replayed_excl_vat",
    "delta_excl_vat",
    "booked_incl_vat",
    "replayed_incl_vat",
    "delta_incl_vat",
    "booked_fee",
    "replayed_fee",
    "delta_fee",
    "reason",
    "message",
)


def effect(verdict: Verdict) -> dict[str, Decimal]:
    """What applying this verdict books, per component (zero for most)."""
    if verdict.change is Change.AMOUNT_CHANGED:
        return {d.component: d.delta for d in verdict.deltas}
    if verdict.change is Change.NOW_BOOKED and isinstance(verdict.replayed, Booked):
        amounts = verdict.replayed.entry.amounts
        return {"excl_vat": amounts.excl_vat, "incl_vat": amounts.incl_vat, "fee": amounts.fee}
    return {}


@dataclass(slots=True)
class _Line:
    changes: Counter[str] = field(default_factory=Counter)
    effect: dict[str, Decimal] = field(
        default_factory=lambda: {name: Decimal(0) for name in COMPONENTS}
    )


@dataclass(slots=True)
class Totals:
    """Counts and effects per (partner, role, currency), filled verdict by verdict."""

    lines: dict[tuple[str, str, str], _Line] = field(default_factory=dict)
    changes: Counter[str] = field(default_factory=Counter)

    def add(self, verdict: Verdict) -> None:
        self.changes[verdict.change.value] += 1
        moved = effect(verdict)
        currency = verdict.currency or "-"
        for party, role in ((verdict.cpo, "CPO"), (verdict.emsp, "EMSP")):
            if party is None:
                continue
            line = self.lines.setdefault((party, role, currency), _Line())
            line.changes[verdict.change.value] += 1
            for component, amount in moved.items():
                line.effect[component] += amount

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "partner": partner,
                "role": role,
                "currency": currency,
                "changes": {change.value: line.changes[change.value] for change in Change},
                "effect": {name: str(amount) for name, amount in line.effect.items()},
            }
            for (partner, role, currency), line in sorted(self.lines.items())
        ]


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    record = verdict.record
    return {
        "archive_id": record.archive_id,
        "position": f"{record.topic}[{record.partition}]@{record.offset}",
        "cdr_key": verdict.cdr_key,
        "cpo": verdict.cpo,
        "emsp": verdict.emsp,
        "currency": verdict.currency,
        "change": verdict.change.value,
        "was": record.original.outcome.value,
        "causes": [cause.value for cause in verdict.causes],
        "deltas": [
            {
                "component": d.component,
                "booked": str(d.booked),
                "replayed": str(d.replayed),
                "delta": str(d.delta),
            }
            for d in verdict.deltas
        ],
        "reason": verdict.reason,
        "message": verdict.message,
    }


def write_csv(verdicts: Iterable[Verdict], out: TextIO) -> int:
    """One row per verdict (all of them, `same` included); returns the row count."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for verdict in verdicts:
        writer.writerow(csv_row(verdict))
        rows += 1
    return rows


def csv_row(verdict: Verdict) -> list[str]:
    record = verdict.record
    by_component = {d.component: d for d in verdict.deltas}
    amounts: list[str] = []
    for name in COMPONENTS:
        delta = by_component.get(name)
        amounts += (
            ["", "", ""]
            if delta is None
            else [
                str(delta.booked),
                str(delta.replayed),
                str(delta.delta),
            ]
        )
    return [
        str(record.archive_id),
        record.topic,
        str(record.partition),
        str(record.offset),
        verdict.cdr_key or "",
        verdict.cpo or "",
        verdict.emsp or "",
        verdict.currency or "",
        verdict.change.value,
        " ".join(cause.value for cause in verdict.causes),
        *amounts,
        verdict.reason or "",
        verdict.message or "",
    ]
