"""Shared terminal output: rich consoles for people, plain JSON for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

# Piped output (make, CI logs) has no terminal width; rich would assume 80 columns and
# squeeze tables into unreadable ellipses.
_WIDTH_PIPED = 140

console = Console(width=None if sys.stdout.isatty() else _WIDTH_PIPED)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else _WIDTH_PIPED)


def print_json(value: Any) -> None:
    """JSON on stdout, undecorated, so `| jq` works."""
    typer.echo(json.dumps(value, indent=2, default=str))


def fail(message: str, code: int = 1) -> typer.Exit:
    # one line however long: a log line, or a script's `grep`, sees the whole error
    error_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
