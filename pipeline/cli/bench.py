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
