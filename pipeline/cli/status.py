"""`roamclear status [--json]`: one screen for operators (pipeline.status gathers it)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, print_json
from pipeline.status import OpsStatus, current_status
from settlement.sessions.missing import FindingKind

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


def status(json_output: JsonOpt = False) -> None:
    """Lag per partition of the clearing workers' group, records pending, rejections of the
    last hour by reason, open and last closed batches, dead deliveries, missing CDRs."""
    settings = live_settings()
    if json_output:
        print_json(current_status(settings).as_json())
        return
    with console.status("reading the broker and PostgreSQL…"):
        found = current_status(settings)
    _print(found)


def _print(found: OpsStatus) -> None:
    store = found.store
    lag = Table(
        "topic",
        "partition",
        "committed",
        "high watermark",
        "lag",
        title=f"consumer group {found.group}",
    )
    for item in found.lags:
        committed = "-" if item.committed is None else f"{item.committed:,}"
        lag.add_row(
            item.topic,
            str(item.partition),
            committed,
            f"{item.high_watermark:,}",
            f"{item.records:,}",
        )
    console.print(lag)
    counts = store.clearing
    console.print(
        f"records pending: {counts['pending']:,} of {counts['submitted']:,} submitted "
        f"({counts['ledgered']:,} ledgered, {counts['rejected']:,} rejected, "
        f"{counts['duplicates']:,} duplicates)"
    )
    rejections = Table("stage", "reason", "count", title="rejections, last hour")
    for stage, reason, count in store.rejections:
        rejections.add_row(stage, reason, f"{count:,}")
    console.print(rejections)
    positions = Table("partner", "currency", "postings", "from", "to", "net", title="open batches")
    for p in store.open_positions:
        since, until = f"{p.first_value_time:%Y-%m-%d}", f"{p.last_value_time:%Y-%m-%d}"
        positions.add_row(p.partner, p.currency, f"{p.postings:,}", since, until, str(p.net_amount))
    console.print(positions)
    closed = Table(
        "batch",
        "partner",
        "currency",
        "period",
        "postings",
        "net",
        "closed at",
        title="last closed batches",
    )
    for b in store.closed_batches:
        closed.add_row(
            str(b.batch_id),
            b.partner,
            b.currency,
            f"{b.period_kind} {b.period_start:%Y-%m-%d}",
            f"{b.postings:,}",
            str(b.net_amount),
            f"{b.closed_at:%Y-%m-%d %H:%M}",
        )
    console.print(closed)
    for run in store.last_runs:
        what = f"({run.error})" if run.error else f"{run.batches} batches"
        console.print(f"last {run.state.lower()} run: {run.run_id} at {run.finished_at:%c}, {what}")
    dead = ", ".join(f"{emsp} {n:,}" for emsp, n in store.dead_deliveries.items()) or "none"
    console.print(f"dead deliveries: {dead} (roamclear deliveries list --state dead)")
    console.print(
        f"missing CDRs: {store.missing(FindingKind.MISSING_CDR):,}, stale sessions: "
        f"{store.missing(FindingKind.STALE):,} (roamclear sessions missing-cdrs)"
    )


def register(root: typer.Typer) -> None:
    root.command("status")(status)
