"""`roamclear dev up|status|down`: the embedded broker and PostgreSQL for local work."""

from __future__ import annotations

import typer

from pipeline.cli.console import console, error_console, print_json
from pipeline.config import Settings
from pipeline.embedded import devstack
from pipeline.kafka.admin import BrokerUnavailable, wait_for_broker

app = typer.Typer(help="Start, inspect and stop the embedded broker and PostgreSQL.")


@app.command()
def up() -> None:
    """Start the stack (if not running), migrate, create topics; print shell exports.

    Only the exports go to stdout, so `eval "$(roamclear dev up)"` sets them in a shell.
    """
    settings = Settings.from_env()
    with error_console.status("starting the embedded broker and PostgreSQL…"):
        state, started = devstack.up(settings)
    if started:
        error_console.print("[green]started[/] (migrations applied, topics created)")
    else:
        error_console.print("[yellow]already running[/]")
    typer.echo(state.exports())


@app.command()
def status(json_output: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Say what runs, where, and whether it answers."""
    settings = Settings.from_env()
    state = devstack.read_state(settings)
    if state is None:
        if json_output:
            print_json({"running": False})
        else:
            console.print("not running (start it with `roamclear dev up`)")
        raise typer.Exit(1)
    answering = True
    try:
        wait_for_broker(state.bootstrap_servers, timeout_s=3)
    except BrokerUnavailable:
        answering = False
    report = {
        "running": state.running() and answering,
        "bootstrap_servers": state.bootstrap_servers,
        "database_url": state.database_url,
        "broker_pid": state.broker_pid,
        "postgres_pid": state.postgres_pid,
    }
    if json_output:
        print_json(report)
    else:
        for key, value in report.items():
            console.print(f"[bold]{key:18}[/] {value}")
    if not report["running"]:
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop what `dev up` started (broker data is gone; PostgreSQL data stays on disk)."""
    state = devstack.down(Settings.from_env())
    console.print("stopped" if state is not None else "nothing was running")
