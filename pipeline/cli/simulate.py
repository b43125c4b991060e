"""`roamclear simulate`: realistic partner traffic, with what was sent counted by category."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, print_json
from pipeline.simulate import Category, ScenarioConfig, build_reference, category_counts
from pipeline.simulate.scenario import iter_submissions
from pipeline.simulate.send import register, send_stream

OUTCOME = {
    Category.VALID: "ledgered",
    Category.CREDIT: "ledgered",
    Category.EXACT_DUPLICATE: "duplicate",
}


def simulate(
    via: Annotated[str, typer.Option(help="how CDRs reach the hub: kafka")] = "kafka",
    cpos: Annotated[int, typer.Option(min=1)] = 5,
    emsps: Annotated[int, typer.Option(min=1)] = 10,
    cdrs: Annotated[int, typer.Option(min=1, help="records to submit in all")] = 10_000,
    rate: Annotated[
        float | None, typer.Option(help="records per second (default: flat out)")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Simulate partner traffic: reference data, then CDRs of every kind to the hub.

    Registers partners, tariffs, locations and agreements, then submits CDRs (valid, exact
    and conflicting duplicates, credits, malformed JSON, schema-invalid, unknown tariff, no
    agreement) and prints what was sent by category and the outcomes the books must show."""
    if via != "kafka":
        raise typer.BadParameter("only kafka is available (the OCPI receiver is not built yet)")
    config = ScenarioConfig(cpos=cpos, emsps=emsps, cdrs=cdrs, seed=seed)
    settings = live_settings()
    data = build_reference(config)
    register(settings, data)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=json_output,
        disable=json_output,
    ) as progress:
        task = progress.add_task("submitting CDRs", total=cdrs)
        sent = asyncio.run(
            send_stream(
                settings,
                iter_submissions(config, data),
                rate,
                lambda n: progress.advance(task, n),
            )
        )
    expected = category_counts(config)
    outcomes = {
        "ledgered": expected.ledgered,
        "rejected": expected.rejected,
        "duplicates": expected.duplicates,
    }
    if json_output:
        print_json({"sent": dict(sent), "expected": outcomes, "partners": len(data.partners)})
        return
    _print(sent, outcomes, len(data.partners), len(data.tariffs), len(data.agreements))


def _print(
    sent: Counter[str], outcomes: dict[str, int], partners: int, tariffs: int, agreements: int
) -> None:
    console.print(
        f"registered {partners} partners, {tariffs} tariffs, {agreements} agreement versions"
    )
    table = Table("category", "sent", "must end as", title="submitted to cdr.submitted")
    for category in Category:
        outcome = OUTCOME.get(category, "rejected")
        table.add_row(category.value, f"{sent[category.value]:,}", outcome)
    table.add_row("[bold]total", f"[bold]{sum(sent.values()):,}", "")
    console.print(table)
    console.print(
        "expected books: "
        + ", ".join(f"{name} {count:,}" for name, count in outcomes.items())
        + " (check with `roamclear counts`)"
    )


def register_command(root: typer.Typer) -> None:
    root.command("simulate")(simulate)
