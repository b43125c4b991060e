"""What many commands share: resolved settings, JSON file reading with precise errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from pipeline.cli.console import error_console, fail
from pipeline.config import Settings
from pipeline.embedded import EmbeddedError, devstack
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.validation import SchemaInvalid

T = TypeVar("T")
# a long-running command's /metrics, /health and /ready port (docs/observability.md); off
# unless given here or in Settings (ROAMCLEAR_METRICS_PORT, ROAMCLEAR_METRICS_HOST)
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        help="serve /metrics, /health and /ready on this port (default: ROAMCLEAR_METRICS_PORT"
        ", else off)",
    ),
]
MetricsHostOpt = Annotated[
    str | None,
    typer.Option(help="bind address of that port (default: ROAMCLEAR_METRICS_HOST, 127.0.0.1)"),
]


def metrics_address(
    settings: Settings, port: int | None, host: str | None
) -> tuple[str, int] | None:
    """Where to serve the metrics port: the options, else the settings; None: off."""
    port = settings.metrics_port if port is None else port
    return None if port is None else (settings.metrics_host if host is None else host, port)


def live_settings() -> Settings:
    """Settings naming both servers (the embedded stack is started when none is set)."""
    try:
        return devstack.resolve(Settings.from_env(), notify=_warn)
    except EmbeddedError as exc:
        raise fail(str(exc)) from None


def party_option(text: str, option: str = "--id") -> PartyRef:
    """A CC*PID option's party; exits 2 saying which option and why when it is not one."""
    try:
        return PartyRef.parse(text)
    except ValueError as exc:
        raise fail(f"{option}: {exc}", 2) from None


def _warn(notice: str) -> None:
    error_console.print(f"[yellow]warning:[/] {notice}", highlight=False, soft_wrap=True)


def read_objects(path: Path, parse: Callable[[Any], T]) -> list[T]:
    """One object or a JSON list of them; exits 2 listing every violation of every object."""
    try:
        document = loads_exact(path.read_bytes())
    except (OSError, ValueError) as exc:
        error_console.print(f"[bold red]error:[/] cannot read {path}: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    items = document if isinstance(document, list) else [document]
    parsed: list[T] = []
    failed = False
    for index, item in enumerate(items):
        try:
            parsed.append(parse(item))
        except SchemaInvalid as exc:
            failed = True
            where = f"{path}[{index}]" if isinstance(document, list) else str(path)
            for violation in exc.violations:
                error_console.print(f"{where}: {violation}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)
    return parsed
