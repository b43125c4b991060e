"""`roamclear demo`: the hub end to end on the embedded default, one step after another.

Each step prints what it did as a table. The stack is started if it is not running, and
stopped again at the end unless it was running before (or `--keep` is given).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources

from rich.console import Console
from rich.table import Table

from pipeline.cli.rate import explain_table
from pipeline.config import Settings
from pipeline.embedded import devstack
from pipeline.kafka.client import read_from_beginning
from pipeline.publish import cdr_record, publish_records
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.events import CdrSubmitted, parse_envelope
from schemas.ocpi.cdr import Cdr
from settlement.rating import rate_cdr

SAMPLE_CDRS = "cdrs_nl_tnm.json"


def sample_cdrs() -> list[Cdr]:
    raw = resources.files("pipeline.samples").joinpath(SAMPLE_CDRS).read_bytes()
    return [Cdr.model_validate(item) for item in loads_exact(raw)]


@contextmanager
def demo_stack(settings: Settings, keep: bool, console: Console) -> Iterator[Settings]:
    """The servers for the demo; stops what it started unless `keep`."""
    if settings.kafka_bootstrap_servers and settings.database_url:
        yield settings
        return
    with console.status("starting the embedded broker and PostgreSQL…"):
        state, started = devstack.up(settings)
    console.print(
        f"[bold]broker[/] {state.bootstrap_servers}   [bold]PostgreSQL[/] {state.database_url}"
        + ("" if started else "   (already running)"),
        soft_wrap=True,
    )
    try:
        yield settings.with_servers(
            settings.kafka_bootstrap_servers or state.bootstrap_servers,
            settings.database_url or state.database_url,
        )
    finally:
        if started and not keep:
            devstack.down(settings)
            console.print("[dim]stopped the embedded stack (use --keep to leave it running)[/]")


def step_submit(settings: Settings, cdrs: Sequence[Cdr], console: Console) -> list[CdrSubmitted]:
    """Publish the CDRs to cdr.submitted and read them back from the broker."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    records = [cdr_record(cdr) for cdr in cdrs]
    sent_ids = {parse_envelope(value).event_id for _, value in records}
    values = {value for _, value in records}
    asyncio.run(publish_records(settings.kafka_bootstrap_servers, topic, records))
    keys = {key for key, _ in records}
    received = asyncio.run(
        read_from_beginning(
            settings.kafka_bootstrap_servers,
            topic,
            count=100_000,
            timeout_s=30,
            until=lambda got: keys <= {r.key for r in got if r.value in values},
        )
    )
    envelopes = []
    table = Table(title=f"read back from {topic}", title_justify="left")
    for column in ("partition", "offset", "key", "session start", "energy kWh", "declared total"):
        table.add_column(column, justify="right" if column[0] in "poed" else "left", no_wrap=True)
    for record in received:
        assert record.value is not None
        envelope = parse_envelope(record.value)
        if envelope.event_id not in sent_ids or not isinstance(envelope, CdrSubmitted):
            continue  # an earlier run's events on a stack that was left running
        envelopes.append(envelope)
        cdr = envelope.cdr
        table.add_row(
            str(record.partition),
            str(record.offset),
            (record.key or b"").decode(),
            f"{cdr.start_date_time:%Y-%m-%d %H:%M}Z",
            str(cdr.total_energy),
            f"{cdr.total_cost.excl_vat} {cdr.currency}",
        )
    console.print(table)
    console.print(f"published {len(records)} CDRs, read back {len(envelopes)}")
    if len(envelopes) != len(records):
        raise RuntimeError(f"sent {len(records)} CDRs but read back {len(envelopes)}")
    return envelopes


def step_rate(envelopes: Sequence[CdrSubmitted], console: Console) -> None:
    """Price every CDR read back against its tariff; explain the priciest one."""
    table = Table(title="hub price vs CPO-declared total", title_justify="left")
    for column in ("CDR", "tariff", "zone", "hub excl VAT", "hub incl VAT", "declared", "check"):
        table.add_column(column, justify="right" if "VAT" in column else "left", no_wrap=True)
    rated = []
    for envelope in envelopes:
        result = rate_cdr(envelope.cdr)
        rated.append(result)
        within = result.comparison.within_tolerance
        table.add_row(
            envelope.cdr.id,
            f"{result.tariff.id} ({result.tariff.content_hash[:8]})",
            result.time_zone or "-",
            str(result.totals.total_cost.excl_vat),
            str(result.totals.total_cost.incl_vat),
            f"{envelope.cdr.total_cost.excl_vat} / {envelope.cdr.total_cost.incl_vat}",
            "[green]matches[/]" if within else "[red]differs[/]",
        )
    console.print(table)
    priciest = max(rated, key=lambda r: r.totals.total_cost.excl_vat)
    console.print(explain_table(priciest))


def run(settings: Settings, keep: bool, console: Console) -> None:
    cdrs = sample_cdrs()
    with demo_stack(settings, keep, console) as live:
        console.rule("1. submit CDRs to the hub")
        envelopes = step_submit(live, cdrs, console)
        console.rule("2. price them against the CPO's tariff (OCPI 2.2.1 semantics)")
        step_rate(envelopes, console)
