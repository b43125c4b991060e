"""`roamclear rebuild --into DATABASE_URL [--from-archive] [--json]`: clear cdr.submitted
again from the beginning into an empty database (pipeline.rebuild.run), then compare with
`roamclear books diff`.

Exit codes: 0 rebuilt; 1 the target is not empty, or a server failed; 2 a bad option.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import psycopg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.rebuild.run import RebuildSummary, count_source, rebuild
from settlement.store.rebuild_store import TargetNotEmpty
from settlement.store.urls import redacted


def rebuild_command(
    into: Annotated[
        str, typer.Option("--into", help="an EMPTY database to rebuild into (it is migrated)")
    ],
    from_archive: Annotated[
        bool,
        typer.Option(
            "--from-archive",
            help="read cdr.submitted from the live database's archive (raw_event) instead "
            "of the broker: for records the broker no longer holds",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Clear every record of cdr.submitted again, from the beginning, into an empty database,
    with the clearing agent's own code (reference topics applied in broker-time order, the
    partner registry copied from the live database). Nothing is produced to any topic.
    Compare the result with `roamclear books diff LIVE_URL REBUILT_URL`."""
    if not into.startswith(("postgresql://", "postgres://")):
        raise fail(f"--into: {into!r} is not a PostgreSQL URL (postgresql://user@host/db)", 2)
    settings = live_settings()
    total = asyncio.run(count_source(settings, from_archive))
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=error_console,
        disable=json_output,
    )
    try:
        with progress:
            task = progress.add_task("clearing again", total=total)
            summary = asyncio.run(
                rebuild(settings, into, from_archive, lambda n: progress.advance(task, n))
            )
    except TargetNotEmpty as exc:
        raise fail(f"{exc}: {redacted(into)}") from None
    except psycopg.OperationalError as exc:
        raise fail(f"cannot use {redacted(into)}: {str(exc).strip()}") from None
    except (LookupError, TimeoutError) as exc:  # a topic missing, a partition that stalls
        raise fail(f"cannot read the broker: {exc}") from None
    if json_output:
        print_json({"into": redacted(into), **summary.as_json()})
        return
    _print(summary, redacted(into))


def _print(summary: RebuildSummary, into: str) -> None:
    table = Table("records", "batches", "booked", "duplicate", "rejected", "seconds")
    table.add_row(
        f"{summary.records:,}",
        f"{summary.batches:,}",
        f"{summary.outcomes['booked']:,}",
        f"{summary.outcomes['duplicate']:,}",
        f"{summary.outcomes['rejected']:,}",
        f"{summary.elapsed_s:.1f}",
    )
    console.print(f"rebuilt from the {summary.source} into {into}")
    console.print(table)
    applied = ", ".join(f"{n:,} {kind}" for kind, n in sorted(summary.reference.items()))
    copied = ", ".join(f"{n:,} {table}" for table, n in summary.registry.items())
    console.print(f"reference data applied: {applied or 'none'}; registry copied: {copied}")
    for refused in summary.reference_refused:
        console.print(f"[yellow]reference record not applied[/] {refused.where}: {refused.why}")
    if summary.records_without_time:
        console.print(
            f"[yellow]{summary.records_without_time:,} records had no broker time[/]: "
            "decided at the time of the record before them"
        )
    console.print(
        f"{summary.events_not_produced:,} output events not produced (the live worker did). "
        "Next: roamclear books diff LIVE_URL REBUILT_URL --scope clearing"
    )


def register(root: typer.Typer) -> None:
    """Mount `rebuild` on the root `roamclear` app."""
    root.command("rebuild")(rebuild_command)
