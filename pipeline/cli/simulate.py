"""`roamclear simulate`: realistic partner traffic, with what was sent counted by category."""

from __future__ import annotations

import asyncio
from collections import Counter
from enum import StrEnum
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, fail, print_json
from pipeline.config import Settings
from pipeline.simulate import (
    Category,
    ReferenceData,
    ScenarioConfig,
    build_reference,
    category_counts,
)
from pipeline.simulate.over_http import HttpExpected, HttpTally, HubRefused
from pipeline.simulate.scenario import iter_submissions
from pipeline.simulate.send import register, send_stream
from pipeline.simulate.via_http import (
    AlreadyConnected,
    check_not_connected,
    hub_api,
    send_over_http,
)

OUTCOME = {
    Category.VALID: "ledgered",
    Category.CREDIT: "ledgered",
    Category.EXACT_DUPLICATE: "duplicate",
}


class Via(StrEnum):
    KAFKA = "kafka"
    HTTP = "http"


def simulate(
    via: Annotated[
        Via,
        typer.Option(
            help="how partners reach the hub: kafka (signed records on cdr.submitted) or http "
            "(OCPI 2.2.1: handshake, tariffs and locations PUT, sessions PUT/PATCH, CDRs POST)"
        ),
    ] = Via.KAFKA,
    hub_url: Annotated[
        str | None,
        typer.Option(
            help="with --via http: the hub's API (its ROAMCLEAR_PUBLIC_URL); default: start "
            "one on a free port for the run"
        ),
    ] = None,
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
    agreement) and prints what was sent by category and the outcomes the books must show.
    Over HTTP every simulated partner runs an OCPI platform of its own and connects through
    the credentials handshake; forged CDRs are POSTed by another CPO, and one valid CDR in a
    hundred has a twin session whose CDR never comes (`sessions missing-cdrs` lists them)."""
    config = ScenarioConfig(cpos=cpos, emsps=emsps, cdrs=cdrs, seed=seed)
    settings = live_settings()
    data = build_reference(config)
    if via is Via.HTTP:
        if rate is not None:
            raise fail("--rate is for --via kafka (over HTTP the hub's answers set the pace)", 2)
        _simulate_http(settings, config, data, hub_url, json_output)
        return
    if hub_url is not None:
        raise fail("--hub-url is for --via http", 2)
    register(settings, data)
    with _progress(json_output) as progress:
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


def _progress(json_output: bool) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=json_output,
        disable=json_output,
    )


def _simulate_http(
    settings: Settings,
    config: ScenarioConfig,
    data: ReferenceData,
    hub_url: str | None,
    json_output: bool,
) -> None:
    try:
        check_not_connected(settings, data)
    except AlreadyConnected as exc:
        raise fail(str(exc), 1) from None
    with _progress(json_output) as progress:
        task = progress.add_task("partners connecting, then sessions and CDRs", total=config.cdrs)
        try:
            with hub_api(settings, hub_url, settings.home) as url:
                run = send_over_http(
                    settings,
                    url,
                    data,
                    iter_submissions(config, data),
                    lambda n: progress.advance(task, n),
                )
        except (AlreadyConnected, HubRefused) as exc:
            raise fail(str(exc), 1) from None
    expected = HttpExpected.of(category_counts(config))
    if json_output:
        print_json(
            {
                "via": "http",
                "partners": run.partners,
                "reference_pushed": run.reference_pushed,
                **run.tally.json(),
                "expected": {
                    "received_http": expected.received_http,
                    "accepted_http": expected.accepted_http,
                    "duplicates_http": expected.duplicates_http,
                    "rejected_at_ingest": expected.rejected_at_ingest,
                    "ledgered": expected.ledgered,
                    "rejected": expected.rejected,
                    "missing_cdrs": run.tally.sessions_without_cdr,
                },
            }
        )
        return
    console.print(
        f"connected {run.partners} partners through the credentials handshake; CPOs PUT "
        f"{run.reference_pushed} tariffs and locations"
    )
    console.print(answers_table(run.tally))
    console.print(
        f"sessions PUT and PATCHed: {run.tally.sessions_put:,}, of which "
        f"{run.tally.sessions_without_cdr:,} never get their CDR; "
        f"{run.tally.throttled[0]:,} requests waited out a 429 and were sent again"
    )
    console.print(
        f"expected: received_http {expected.received_http:,} = accepted "
        f"{expected.accepted_http:,} + duplicates {expected.duplicates_http:,} + rejected at "
        f"ingest {expected.rejected_at_ingest:,}; then ledgered {expected.ledgered:,}, rejected "
        f"{expected.rejected:,} (check with `roamclear counts` and `roamclear sessions "
        "missing-cdrs`)",
        highlight=False,
    )


def answers_table(tally: HttpTally) -> Table:
    """CDR POSTs per category and how the hub answered them (HTTP status / OCPI status)."""
    table = Table("category", "CDRs POSTed", "answers (HTTP/OCPI)", title="CDRs over OCPI")
    for category, answers in sorted(tally.answers.items()):
        table.add_row(
            category,
            f"{sum(answers.values()):,}",
            ", ".join(f"{answer} ×{n:,}" for answer, n in sorted(answers.items())),
        )
    table.add_row("[bold]total", f"[bold]{tally.posted:,}", "")
    return table


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
