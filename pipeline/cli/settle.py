"""``roamclear settle``: close settlement batches per partner, currency and period.

    roamclear settle close [--as-of 2025-07-01T00:00:00] [--json]   close once, print it
    roamclear settle run [--every 5m]         the periodic closer (SIGTERM stops it cleanly)

Configuration: ``ROAMCLEAR_SETTLEMENT_TZ`` (period boundaries, default UTC) and
``ROAMCLEAR_SETTLEMENT_GRACE`` (how long after its end a period waits, default 1h; ``90s``,
``30m``, ``2h``, ``1d``). Every batch is sealed with the hub's statement key
(pipeline.hubkeys: ``ROAMCLEAR_HUB_KEY``, ``ROAMCLEAR_HUB_KEY_FILE`` or ``<home>/hub.key``);
``--json`` prints each batch's seal, so the closer's output anchors the newest seal of every
chain outside the database. The lead mounts it with
``app.add_typer(settle.app, name="settle")``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from pipeline.cli.common import MetricsHostOpt, MetricsPortOpt, live_settings, metrics_address
from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.config import Settings, parse_duration
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_seal_keys
from pipeline.observe.closer_http import CloserHealth, serve_closer
from pipeline.observe.metrics import observe_close
from settlement.batches.model import ClosePolicy
from settlement.batches.seal import SealKey
from settlement.keys import HubKeyInvalid
from settlement.store.closing import CloseRefused, CloseReport, close_once

app = typer.Typer(
    help="Close settlement batches (one per partner, currency and period).", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


def policy_of(settings: Settings) -> ClosePolicy:
    return ClosePolicy(time_zone=settings.settlement_time_zone, grace=settings.settlement_grace)


def policy_from_env(environ: Mapping[str, str] | None = None) -> ClosePolicy:
    """The close policy of the environment's settings (`Settings.from_env`)."""
    return policy_of(Settings.from_env(environ))


def _servers() -> tuple[str, SealKey]:
    """The database and the key that seals what this process closes."""
    settings = live_settings()
    try:
        return role_url(settings, DbRole.CLOSER), load_seal_keys(settings).current
    except HubKeyInvalid as exc:
        raise fail(str(exc), 2) from exc


def report_json(report: CloseReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "as_of": report.as_of.isoformat(),
        "watermark": report.watermark,
        "postings": report.postings,
        "duration_s": round(report.duration_s, 3),
        "batches": [
            {
                "id": b.batch_id,
                "partner": b.partner,
                "currency": b.currency,
                "period_kind": b.period_kind,
                "period_start": b.period_start.isoformat(),
                "period_end": b.period_end.isoformat(),
                "postings": b.postings,
                "late_postings": b.late_postings,
                "net_amount": str(b.net_amount),
                "rounding": str(b.rounding),
                "checksum": b.checksum,
                "seal": b.seal,
            }
            for b in report.batches
        ],
    }


def _print_report(report: CloseReport) -> None:
    if not report.batches:
        console.print(f"nothing to close as of {report.as_of.isoformat()}")
        return
    table = Table(
        title=f"run {report.run_id}: {len(report.batches)} batches closed, "
        f"{report.postings} postings, {report.duration_s:.2f} s"
    )
    for column in ("id", "partner", "currency", "period", "start", "postings", "late"):
        table.add_column(
            column, justify="right" if column in ("id", "postings", "late") else "left"
        )
    table.add_column("net amount", justify="right")
    for b in report.batches:
        table.add_row(
            str(b.batch_id),
            b.partner,
            b.currency,
            b.period_kind,
            b.period_start.isoformat(),
            str(b.postings),
            str(b.late_postings),
            str(b.net_amount),
        )
    console.print(table)


def _policy() -> ClosePolicy:
    try:
        return policy_from_env()
    except ValueError as exc:
        raise fail(str(exc), 2) from exc


@app.command("close")
def close(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            help="close as of this instant (default now; never the future)",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Close every partner period that ended (plus the grace delay); print what closed."""
    policy = _policy()
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=ZoneInfo("UTC"))
    url, seal_key = _servers()
    try:
        if json_output:
            report = close_once(url, as_of, policy, seal_key)
        else:
            with console.status("closing settlement periods…"):
                report = close_once(url, as_of, policy, seal_key)
    except CloseRefused as exc:
        raise fail(str(exc), 2) from exc
    if json_output:
        print_json(report_json(report))
    else:
        _print_report(report)


@app.command("run")
def run(
    every: Annotated[str, typer.Option("--every", help="interval between closes")] = "5m",
    json_output: JsonOpt = False,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = None,
) -> None:
    """The periodic closer: close, wait, repeat; SIGTERM or Ctrl-C stops it between closes.
    Its metrics (runs, durations, statements): docs/observability.md."""
    policy = _policy()
    try:
        interval = parse_duration(every)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    url, seal_key = _servers()
    health = CloserHealth()
    address = metrics_address(Settings.from_env(), metrics_port, metrics_host)
    if address is not None:
        serve_closer(*address, health)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        error_console.print(f"{signal.Signals(signum).name}: stopping after this close")
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    error_console.print(
        f"settlement closer: every {interval}, zone {policy.time_zone}, grace {policy.grace}"
    )
    while not stop.is_set():
        started = time.perf_counter()
        try:
            report = close_once(url, None, policy, seal_key)
        except Exception as exc:  # one failed close must not end the service; it is recorded
            observe_close("failed", time.perf_counter() - started, 0)
            health.failed(type(exc).__name__)
            error_console.print(f"[bold red]close failed:[/] {type(exc).__name__}: {exc}")
        else:
            closed = len(report.batches)
            observe_close("closed" if closed else "empty", report.duration_s, closed)
            health.closed(closed)
            if json_output:
                print_json(report_json(report))
            else:
                _print_report(report)
        if json_output:
            stop.wait(interval.total_seconds())
        else:
            with console.status(f"next close in {interval}…"):
                stop.wait(interval.total_seconds())
    error_console.print("settlement closer stopped")
