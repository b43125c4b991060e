"""`roamclear dev up|status|down`: the embedded broker and PostgreSQL for local work."""

from __future__ import annotations

import psycopg
import typer

from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.config import Settings
from pipeline.embedded import EmbeddedError, devstack
from pipeline.embedded.devstack import Action, Component, ComponentStatus, Health
from settlement.store.urls import redacted

app = typer.Typer(help="Start, inspect and stop the embedded broker and PostgreSQL.")

NAMES = {Component.BROKER: "broker", Component.POSTGRES: "PostgreSQL"}


@app.command()
def up(
    reset: bool = typer.Option(
        False, "--reset", help="empty the sandbox: a new broker and a new database"
    ),
) -> None:
    """Start what is not running (PostgreSQL on its existing data), keep what runs, migrate,
    create topics; print shell exports.

    Only the exports go to stdout, so `eval "$(roamclear dev up)"` sets them in a shell.
    A running broker is never stopped and the database never dropped, except by --reset.
    """
    settings = Settings.from_env()
    try:
        with error_console.status("starting the embedded broker and PostgreSQL…"):
            stack = devstack.up(settings, reset=reset)
    except (EmbeddedError, psycopg.Error) as exc:
        raise fail(str(exc)) from None
    for component, action in stack.actions.items():
        where = stack.bootstrap_servers if component == Component.BROKER else stack.database_url
        error_console.print(
            f"{NAMES[component]:10} {action:10} {redacted(where)}",
            highlight=False,
            soft_wrap=True,
        )
    for notice in stack.notices:
        error_console.print(f"[yellow]warning:[/] {notice}", highlight=False, soft_wrap=True)
    if all(action in (Action.KEPT, Action.CONFIGURED) for action in stack.actions.values()):
        error_console.print("[yellow]already running[/]")
    else:
        error_console.print("[green]ready[/] (migrations applied, topics created)")
    exports = stack.exports()
    if exports:
        typer.echo(exports)


@app.command()
def status(json_output: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Say per component whether it runs and answers (its port or socket, not a stored pid),
    and where. Exits 1 unless both answer."""
    components = devstack.status(Settings.from_env())
    running = all(c.health == Health.RUNNING for c in components)
    if json_output:
        report: dict[str, object] = {"running": running}
        report.update({str(c.component): c.as_dict() for c in components})
        print_json(report)
    else:
        for component in components:
            console.print(_status_line(component), highlight=False, soft_wrap=True)
        if not running:
            console.print("start what is missing with `roamclear dev up`")
    if not running:
        raise typer.Exit(1)


def _status_line(component: ComponentStatus) -> str:
    colour = "green" if component.health == Health.RUNNING else "red"
    parts = [f"[bold]{NAMES[component.component]:10}[/] [{colour}]{component.health:13}[/]"]
    if component.address:
        parts.append(component.address)
    if component.pid is not None:
        parts.append(f"pid {component.pid}")
    if not component.managed:
        parts.append("(configured in the environment)")
    elif component.health != Health.RUNNING and component.log:
        parts.append(f"log {component.log}")
    return "  ".join(parts)


@app.command()
def down() -> None:
    """Stop what `dev up` started (broker data is gone; PostgreSQL data stays on disk)."""
    try:
        state = devstack.down(Settings.from_env())
    except EmbeddedError as exc:
        raise fail(str(exc)) from None
    console.print("stopped" if state is not None else "nothing was running")
