"""`roamclear deliver` (the process) and `roamclear deliveries list|show|retry` (the ledger)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import (
    MetricsHostOpt,
    MetricsPortOpt,
    live_settings,
    metrics_address,
    party_option,
)
from pipeline.cli.console import console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from settlement.store import deliveries as store
from settlement.store.db import connect
from settlement.store.deliveries import DeliveryState

app = typer.Typer(help="CDR deliveries to eMSPs: state, attempts, and queueing dead ones again.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]
PartnerOpt = Annotated[
    str | None, typer.Option("--partner", help="only this eMSP (or CPO), e.g. DE*EMS")
]


def _state(text: str | None) -> DeliveryState | None:
    if text is None:
        return None
    try:
        return DeliveryState(text.upper())
    except ValueError:
        states = ", ".join(s.value.lower() for s in DeliveryState)
        raise fail(f"--state must be one of {states}, not {text!r}", 2) from None


@app.command("list")
def list_(
    partner: PartnerOpt = None,
    state: Annotated[str | None, typer.Option(help="pending, retrying, delivered or dead")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Deliveries, newest first, with the count per state."""
    party = None if partner is None else str(party_option(partner, "--partner"))
    wanted = _state(state)
    settings = live_settings()
    with connect(role_url(settings, DbRole.READER)) as conn:
        rows = store.list_deliveries(conn, party, wanted, limit)
        per_state = store.counts(conn, party)
    if json_output:
        print_json({"counts": per_state, "deliveries": [row.as_json() for row in rows]})
        return
    table = Table("id", "CDR", "kind", "CPO", "eMSP", "state", "tries", "next try", "last error")
    for row in rows:
        table.add_row(
            str(row.delivery_id),
            row.cdr_key,
            row.kind,
            row.cpo,
            row.emsp,
            row.state.value,
            str(row.attempts),
            "-" if row.next_attempt_at is None else f"{row.next_attempt_at:%H:%M:%S}",
            (row.last_error or "")[:70],
        )
    console.print(table)
    console.print("  ".join(f"{name.lower()} {count}" for name, count in per_state.items()))


@app.command()
def show(
    which: Annotated[str, typer.Argument(help="a delivery id, or a CDR key (CC*PID*ID)")],
    json_output: JsonOpt = False,
) -> None:
    """A delivery with every attempt: request ids, answers, the eMSP's Location."""
    settings = live_settings()
    with connect(role_url(settings, DbRole.READER)) as conn:
        details = store.show(conn, which)
    if not details:
        raise fail(f"no delivery {which!r}", 1)
    if json_output:
        print_json([detail.as_json() for detail in details])
        return
    for detail in details:
        d = detail.delivery
        console.print(
            f"[bold]delivery {d.delivery_id}[/]  {d.kind} {d.cdr_key}  {d.cpo} -> {d.emsp}  "
            f"[bold]{d.state.value}[/] after {d.attempts} attempt(s)"
        )
        console.print(
            f"  correlation {d.correlation_id}  delivered as request {d.request_id or '-'}  "
            f"Location {d.emsp_location or '-'}"
        )
        table = Table("#", "request id", "started", "answer", "error")
        for a in detail.attempts:
            answer = (
                "cut short"
                if a.finished_at is None
                else f"{a.http_status or '-'}/{a.ocpi_status or '-'}"
                + (" delivered" if a.delivered else "")
            )
            table.add_row(
                str(a.attempt),
                a.request_id,
                f"{a.started_at:%Y-%m-%d %H:%M:%S}",
                answer,
                (a.error or "")[:70],
            )
        console.print(table)


@app.command()
def retry(
    delivery_ids: Annotated[
        list[int] | None, typer.Argument(help="delivery ids; none: every dead one")
    ] = None,
    partner: PartnerOpt = None,
) -> None:
    """Queue dead deliveries again, now, with a fresh run of attempts (after the eMSP fixed
    its endpoint). Delivered ones are never sent again."""
    party = None if partner is None else str(party_option(partner, "--partner"))
    settings = live_settings()
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        queued = store.requeue(conn, delivery_ids or (), party)
    console.print(f"re-queued {len(queued)} deliver{'y' if len(queued) == 1 else 'ies'}")


def deliver(
    loglevel: Annotated[str, typer.Option(help="crit, error, warn, info or debug")] = "warn",
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = None,
) -> None:
    """Run CDR delivery: every booked CDR (and credit) to its eMSP's OCPI cdrs endpoint, with
    retries; start more processes to share the work (docs/ocpi.md, "Delivery to eMSPs").
    Metrics (attempts by outcome), health and readiness: docs/observability.md."""
    from pipeline.cli.worker import BoundedStopWorker, use_uvloop
    from pipeline.delivery.app import create_delivery_app
    from pipeline.kafka.admin import create_topics
    from pipeline.observe.metrics import DELIVERER
    from pipeline.observe.worker_http import WorkerEndpoint, assigned_readiness
    from pipeline.topics import topic_specs

    settings = live_settings()
    assert settings.kafka_bootstrap_servers is not None
    settings.home.mkdir(parents=True, exist_ok=True)
    create_topics(settings.kafka_bootstrap_servers, topic_specs(settings.topic_prefix))
    app = create_delivery_app(settings)
    use_uvloop(settings)
    address = metrics_address(settings, metrics_port, metrics_host)
    services = (
        []
        if address is None
        else [WorkerEndpoint(app, *address, registry=DELIVERER, ready_of=assigned_readiness)]
    )
    BoundedStopWorker(app, *services, loglevel=loglevel, quiet=True).execute_from_commandline()


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deliveries")
    root.command("deliver")(deliver)
