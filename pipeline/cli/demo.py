"""`roamclear demo`: what `make demo` runs."""

from __future__ import annotations

import typer

from pipeline import demo as demo_steps
from pipeline.cli.console import console
from pipeline.config import Settings


def demo(
    keep: bool = typer.Option(False, "--keep", help="leave the embedded stack running"),
) -> None:
    """Run the hub end to end on sample data (embedded broker and PostgreSQL by default)."""
    demo_steps.run(Settings.from_env(), keep, console)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
