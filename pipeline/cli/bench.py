"""``roamclear bench``: throughput benchmarks (figures printed, no pass/fail).

    roamclear bench rating            # rich table
    roamclear bench rating --json     # {"typical_per_s": …, "complex_per_s": …, …}

The lead mounts it with ``app.add_typer(bench.app, name="bench")``.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from pipeline.cli.console import console

app = typer.Typer(help="Benchmarks: figures printed, no pass/fail.", no_args_is_help=True)


@app.callback()
def bench() -> None:
    """Benchmarks: figures printed, no pass/fail (keeps ``rating`` a subcommand)."""


@app.command("rating")
def rating(
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
    iterations: int = typer.Option(2000, "--iterations", min=10, help="CDRs per run"),
    runs: int = typer.Option(5, "--runs", min=1, help="runs; the median is reported"),
) -> None:
    """CDRs priced per second: typical and complex, pricing only and parse-and-price."""
    from pipeline.bench import rating as bench

    result = bench.run(iterations=iterations, runs=runs)
    if json_output:
        typer.echo(json.dumps({k: round(v, 1) for k, v in asdict(result).items()}))
        return
    table = Table(title=f"rating throughput, one core, median of {runs} runs")
    table.add_column("workload")
    table.add_column("pricing only (CDR/s)", justify="right")
    table.add_column("parse and price (CDR/s)", justify="right")
    table.add_row(
        "typical (3 periods)",
        f"{result.typical_per_s:,.0f}",
        f"{result.typical_parse_and_price_per_s:,.0f}",
    )
    table.add_row(
        "complex (6 periods, 5 elements)",
        f"{result.complex_per_s:,.0f}",
        f"{result.complex_parse_and_price_per_s:,.0f}",
    )
    console.print(table)


@app.command("settle")
def settle(
    postings: int = typer.Option(1_000_000, "--postings", min=3, help="ledger postings to load"),
    runs: int = typer.Option(3, "--runs", min=1, help="runs; the median is reported"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Close N postings across 200 partners and export a 100,000-line CSV (scratch database)."""
    import io

    from rich.progress import Progress

    from pipeline.bench import settle as bench
    from pipeline.config import Settings
    from pipeline.embedded import devstack
    from pipeline.hubkeys import load_seal_keys
    from settlement.store.db import connect
    from settlement.store.statements_csv import export_csv

    settings = devstack.resolve(Settings.from_env())
    assert settings.database_url is not None

    def export(url: str, batch_id: int) -> int:
        with connect(url) as conn:
            return export_csv(conn, batch_id, io.StringIO())

    with Progress(console=console, transient=True, disable=json_output) as progress:
        loading = progress.add_task("loading postings (COPY, not timed)", total=postings)
        running = progress.add_task("close + export runs", total=runs)

        def report(stage: str, done: int) -> None:
            progress.update(loading if stage == "load" else running, completed=done)

        seal_key = load_seal_keys(settings).current
        result = bench.run(settings.database_url, seal_key, postings, runs, export, report)
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "postings": result.postings,
                    "close_s": round(result.close_s, 3),
                    "export_lines": result.export_lines,
                    "export_s": round(result.export_s, 3),
                    "batches": result.batches,
                    "runs": result.runs,
                }
            )
        )
        return
    table = Table(title=f"settlement, median of {runs} runs ({result.batches} batches closed)")
    table.add_column("step")
    table.add_column("size", justify="right")
    table.add_column("seconds", justify="right")
    table.add_row("load (COPY, not timed)", f"{result.postings:,} postings", f"{result.load_s:.2f}")
    table.add_row("close", f"{result.postings:,} postings", f"{result.close_s:.2f}")
    table.add_row("CSV export", f"{result.export_lines:,} lines", f"{result.export_s:.2f}")
    console.print(table)


@app.command("clearing")
def clearing(
    cdrs: int = typer.Option(5_000, "--cdrs", min=100, help="simulated records per run"),
    runs: int = typer.Option(5, "--runs", min=1, help="runs; the median is reported"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """CPU per CDR of each clearing step in one process, broker and PostgreSQL excluded."""
    from rich.progress import Progress

    from pipeline.bench import clearing as bench
    from pipeline.config import Settings
    from pipeline.embedded import devstack

    settings = devstack.resolve(Settings.from_env())
    assert settings.database_url is not None
    with Progress(console=console, transient=True, disable=json_output) as progress:
        task = progress.add_task(f"clearing {cdrs:,} records per run", total=runs)
        result = bench.run(
            settings.database_url, cdrs, runs, lambda done: progress.update(task, completed=done)
        )
    if json_output:
        figures: dict[str, object] = {
            "cdrs": result.cdrs,
            "runs": result.runs,
            "booked": result.booked,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            **{f"{step}_us": round(us, 1) for step, us in result.us_per_cdr.items()},
            "total_us": round(result.total_us, 1),
            "ceiling_per_core_s": round(result.ceiling_per_core_s, 1),
        }
        typer.echo(json.dumps(figures))
        return
    table = Table(
        title=f"clearing CPU per record, one process, median of {runs} runs "
        f"({result.booked:,} booked, {result.duplicates:,} duplicates, "
        f"{result.rejected:,} rejected of {cdrs:,})"
    )
    table.add_column("step")
    table.add_column("µs per record", justify="right")
    for step, us in result.us_per_cdr.items():
        table.add_row(step, f"{us:,.1f}")
    table.add_row("total", f"{result.total_us:,.1f}", end_section=True)
    table.add_row("ceiling per core, I/O free (records/s)", f"{result.ceiling_per_core_s:,.0f}")
    console.print(table)


@app.command("replay")
def replay(
    cdrs: int = typer.Option(20_000, "--cdrs", min=100, help="simulated records to archive"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Archived records replayed per second (as-booked, shadow), against the live path's
    decode + decide CPU time over the same records (scratch database)."""
    from rich.progress import Progress

    from pipeline.bench import replay as bench
    from pipeline.config import Settings
    from pipeline.embedded import devstack

    settings = devstack.resolve(Settings.from_env())
    assert settings.database_url is not None
    with Progress(console=console, transient=True, disable=json_output) as progress:
        loading = progress.add_task(f"clearing {cdrs:,} records (not timed)", total=1)
        replaying = progress.add_task("replaying", total=cdrs)

        def step(stage: str, done: int) -> None:
            if stage == "loaded":
                progress.update(loading, completed=1)
            else:
                progress.advance(replaying, done)

        result = bench.run(settings.database_url, cdrs, step)
    figures = {
        "cdrs": result.cdrs,
        "per_s": round(result.per_s, 1),
        "cpu_per_s": round(result.cpu_per_s, 1),
        "live_decode_decide_per_s": round(result.live_per_s, 1),
        "same": result.same,
    }
    if json_output:
        typer.echo(json.dumps(figures))
        return
    table = Table(title=f"replay of {result.cdrs:,} archived records, as-booked, one process")
    table.add_column("figure")
    table.add_column("records/s", justify="right")
    table.add_row("replay, wall time (PostgreSQL reads included)", f"{result.per_s:,.0f}")
    table.add_row("replay, CPU time", f"{result.cpu_per_s:,.0f}")
    table.add_row("live path decode + decide, CPU time", f"{result.live_per_s:,.0f}")
    console.print(table)
    console.print(f"{result.same:,} of {result.cdrs:,} records the same as booked")


@app.command("pipeline")
def pipeline_bench(
    cdrs: int = typer.Option(20_000, "--cdrs", min=100, help="simulated CDRs to clear"),
    workers: int = typer.Option(1, "--workers", min=1, max=8, help="worker processes"),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=1,
        help="produce at this many CDRs/s (default: as fast as possible, so latency includes "
        "the backlog; below capacity it is the pipeline's own)",
    ),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """End-to-end clearing (submitted → committed in PostgreSQL) vs a passthrough agent."""
    from pipeline.bench import pipeline as bench
    from pipeline.cli.common import live_settings

    with console.status(f"clearing {cdrs:,} CDRs, then the passthrough baseline…"):
        result = bench.run(live_settings(), cdrs, workers, rate)
    figures = {
        "cdrs": result.cdrs,
        "per_s": round(result.per_s, 1),
        "p50_ms": round(result.p50_ms, 1),
        "p99_ms": round(result.p99_ms, 1),
        "passthrough_per_s": round(result.passthrough_per_s, 1),
        "ratio": round(result.ratio, 2),
        "workers": workers,
        "rate_per_s": rate,
    }
    if json_output:
        typer.echo(json.dumps(figures))
        return
    pace = "as fast as possible" if rate is None else f"at {rate:,.0f}/s"
    table = Table(title=f"pipeline, {workers} worker process(es), {cdrs:,} CDRs produced {pace}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("clearing, CDRs/s end to end", f"{result.per_s:,.0f}")
    table.add_row("latency p50 / p99 (ms)", f"{result.p50_ms:,.0f} / {result.p99_ms:,.0f}")
    table.add_row("passthrough, events/s", f"{result.passthrough_per_s:,.0f}")
    table.add_row("clearing cost vs passthrough", f"{result.ratio:.2f}x")
    console.print(table)


@app.command("deliver")
def deliver(
    cdrs: int = typer.Option(5_000, "--cdrs", min=100, help="simulated CDRs to book"),
    emsps: int = typer.Option(10, "--emsps", min=2, max=50, help="eMSPs to deliver to"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Booked CDRs delivered to K local eMSP receivers, then again with one eMSP dead
    (scratch databases)."""
    from pipeline.bench import deliver as bench
    from pipeline.cli.common import live_settings

    with console.status(f"booking {cdrs:,} CDRs and delivering them to {emsps} eMSPs, twice…"):
        result = bench.run(live_settings(), cdrs, emsps)
    figures = {
        "cdrs": result.cdrs,
        "emsps": result.emsps,
        "deliveries": result.deliveries,
        "per_s": round(result.per_s, 1),
        "p99_ms": round(result.p99_ms, 1),
        "per_s_with_dead_emsp": round(result.per_s_with_dead_emsp, 1),
        "created_per_s": round(result.created_per_s, 1),
    }
    if json_output:
        typer.echo(json.dumps(figures))
        return
    table = Table(title=f"deliveries of {cdrs:,} simulated CDRs to {emsps} eMSPs, one deliverer")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("deliveries (bookings)", f"{result.deliveries:,}")
    table.add_row("deliveries/s", f"{result.per_s:,.0f}")
    table.add_row("p99, delivery created to the eMSP's 2xx (ms)", f"{result.p99_ms:,.0f}")
    table.add_row(
        "deliveries/s to the others, one eMSP dead", f"{result.per_s_with_dead_emsp:,.0f}"
    )
    table.add_row("deliveries created/s (the intake alone)", f"{result.created_per_s:,.0f}")
    console.print(table)


@app.command("ingest")
def ingest(
    clients: int = typer.Option(50, "--clients", min=1, max=500, help="concurrent partners"),
    cdrs: int = typer.Option(20_000, "--cdrs", min=1, help="CDRs POSTed in all"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """CDR POSTs/s over OCPI HTTP (each acked by the broker first) vs the same process's
    authenticated no-op rate (the HTTP floor); scratch database, fresh topics."""
    from pipeline.bench import ingest as bench
    from pipeline.cli.common import live_settings

    if cdrs < clients:
        raise typer.BadParameter(f"at least one CDR per client ({clients})", param_hint="--cdrs")
    with console.status(f"{clients} partners POSTing {cdrs:,} CDRs, and the no-op floor…"):
        try:
            result = bench.run(live_settings(), clients, cdrs)
        except bench.BenchFailed as exc:
            console.print(f"[red]bench ingest failed:[/] {exc}")
            raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps(result.as_json()))
        return
    table = Table(title=f"OCPI CDR ingest, one API process, {clients} keep-alive partners")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("CDR POSTs/s (201 after the broker's ack)", f"{result.per_s:,.0f}")
    table.add_row("latency p50 / p99 (ms)", f"{result.p50_ms:,.1f} / {result.p99_ms:,.1f}")
    table.add_row("authenticated no-op/s (the HTTP floor)", f"{result.floor_per_s:,.0f}")
    table.add_row("floor / ingest", f"{result.ratio:.2f}x")
    console.print(table)
