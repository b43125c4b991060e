"""The demo's tariff correction (`roamclear demo`, step 5): NL*TNM corrects its start fee from
a moment inside the sample CDRs' days; the hub replays them with the current reference data
(`roamclear replay --reference current --partner NL*TNM --apply`), books the differences in
the open period, and applying again books nothing.

The correction is 0.008 EUR excl. VAT on the start fee: the sample agreement (TNM-DEFAULT)
tolerates 0.01 between the declared and the hub's totals, so the CDRs the CPO priced with
the old version stay booked (`amount_changed`); a larger one would be `now_rejected
price_discrepancy` and book nothing (docs/ops.md "Replay").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, Final

from rich.console import Console

from pipeline import reference
from pipeline.cli.replay import ReplayRun, apply_run
from pipeline.config import Settings
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.validation import parse_tariff
from settlement.replay.model import Change, Reference, ReferenceMode
from settlement.store.replay import ReplayRange

CPO: Final = "NL*TNM"
CORRECTED_FROM: Final = "2026-03-02T12:00:00Z"  # between the first and the second sample CDR
START_FEE: Final = Decimal("0.508")  # was 0.50: within the agreement's 0.01 tolerance


def corrected_tariff() -> Any:
    """The sample tariff with the corrected start fee, as a new version from CORRECTED_FROM."""
    raw = resources.files("pipeline.samples").joinpath("tariff_nl_tnm_ac.json").read_bytes()
    tariff: dict[str, Any] = loads_exact(raw)
    (flat,) = tariff["elements"][0]["price_components"]
    assert flat["type"] == "FLAT"
    flat["price"] = START_FEE
    text = f"{START_FEE} EUR start fee (corrected), energy and parking as before"
    tariff["tariff_alt_text"] = [{"language": "en", "text": text}]
    tariff["last_updated"] = CORRECTED_FROM
    return parse_tariff(tariff)


def step_replay(settings: Settings, samples: tuple[datetime, datetime], console: Console) -> None:
    """Publish the correction, replay the sample CDRs' broker times against it and apply it,
    then apply it again: the second run books nothing."""
    published = reference.publish_tariffs(settings, [corrected_tariff()])
    console.print(
        f"{CPO} corrects tariff AC-STANDARD from {CORRECTED_FROM}: start fee 0.50 → "
        f"{START_FEE} EUR (`roamclear tariffs publish`: {published} new version)",
        highlight=False,
    )
    selected = ReplayRange(
        topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED), samples[0], samples[1]
    )
    current = Reference(ReferenceMode.CURRENT)
    first = ReplayRun(CPO)
    applied = apply_run(settings, selected, current, first, None, quiet=True)
    counts = ", ".join(
        f"{first.totals.changes[change.value]} {change.value}"
        for change in (Change.SAME, Change.AMOUNT_CHANGED, Change.NOW_REJECTED, Change.NOW_BOOKED)
    )
    deltas = "; ".join(
        f"{line['currency']} {Decimal(line['effect']['excl_vat']):+} excl. VAT, "
        f"{Decimal(line['effect']['incl_vat']):+} incl. VAT"
        for line in first.totals.as_json()
        if line["partner"] == CPO and line["role"] == "CPO"
    )
    console.print(
        f"$ roamclear replay --from {samples[0]:%Y-%m-%dT%H:%M:%SZ} --to "
        f"{samples[1]:%Y-%m-%dT%H:%M:%SZ} --partner {CPO} --reference current --apply\n"
        f"{sum(first.totals.changes.values())} CDRs: {counts}; Δ {deltas or 'none'}; run "
        f"{applied.run_id} booked {applied.booked} correction(s) in the open period",
        highlight=False,
    )
    again = apply_run(settings, selected, current, ReplayRun(CPO), None, quiet=True)
    console.print(
        f"applied again: run {again.run_id} booked {again.booked} (each correction is booked once)",
        highlight=False,
    )
    if first.totals.changes[Change.AMOUNT_CHANGED.value] == 0 or applied.booked == 0:
        raise RuntimeError("the tariff correction changed no booked CDR")
    if again.booked != 0:
        raise RuntimeError(f"applying the replay again booked {again.booked} correction(s)")
