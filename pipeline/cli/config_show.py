"""`roamclear config show [--json]`: the effective configuration, secrets masked
(pipeline.effective_config)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.console import console, fail, print_json
from pipeline.config import Settings
from pipeline.effective_config import effective

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


def show(json_output: JsonOpt = False) -> None:
    """Every setting, the variable it is read from and its value (secrets as ***). Servers
    left unset show as unset: roamclear then starts its embedded ones."""
    try:
        entries = effective(Settings.from_env())
    except ValueError as exc:  # a variable that does not parse: its name and why
        raise fail(str(exc), 2) from exc
    if json_output:
        print_json({entry.variable: entry.value for entry in entries})
        return
    table = Table("setting", "variable", "value")
    for entry in entries:
        value = "[dim]unset[/]" if entry.value is None else entry.value
        table.add_row(entry.setting, entry.variable, value)
    console.print(table)


def register(config: typer.Typer) -> None:
    config.command("show")(show)
