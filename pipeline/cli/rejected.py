"""`roamclear rejected list|retry`: the dead letters, and re-submitting after a fix."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from pipeline import retry as retries
from pipeline.cli.common import live_settings
from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from settlement.store import books, ocpi_pushes
from settlement.store.db import connect

app = typer.Typer(help="Rejected events: why, and re-submitting them once the cause is fixed.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


@app.command("list")
def list_(
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
    partner: Annotated[str | None, typer.Option(help="only this submitter, e.g. NL*TNM")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 1000,
    json_output: JsonOpt = False,
) -> None:
    """List rejections with their reason codes."""
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.READER)) as conn:
        rows = books.rejections(conn, reason, partner and partner.upper(), limit)
    if json_output:
        print_json(rows)
        return
    table = Table("id", "reason", "stage", "submitter", "CDR", "message", "retries")
    for row in rows:
        table.add_row(
            str(row["rejection_id"]),
            row["reason_code"],
            row["stage"],
            row["submitter"] or "-",
            row["cdr_key"] or "-",
            row["message"][:90],
            str(row["retries"]),
        )
    console.print(table)


@app.command("pushes")
def pushes(
    module: Annotated[str | None, typer.Option(help="only sessions, tariffs or locations")] = None,
    partner: Annotated[str | None, typer.Option(help="only this partner, e.g. NL*TNM")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 1000,
    json_output: JsonOpt = False,
) -> None:
    """Session, tariff and location pushes the OCPI receivers refused, newest first, with the
    answer the partner got and why (every body is kept; CDRs refused at the door are in
    `rejected list`, stage ingest)."""
    if module is not None and module not in ocpi_pushes.MODULES:
        raise fail(f"--module must be one of {', '.join(ocpi_pushes.MODULES)}, not {module!r}", 2)
    settings = live_settings()
    with connect(role_url(settings, DbRole.READER)) as conn:
        rows = ocpi_pushes.refused(conn, module, partner and partner.upper(), limit)
    if json_output:
        print_json(rows)
        return
    table = Table("module", "id", "received", "partner", "method", "object", "answer", "why")
    for row in rows:
        table.add_row(
            row["module"],
            str(row["receipt_id"]),
            f"{row['received_at']:%Y-%m-%d %H:%M:%S}",
            row["partner"],
            row["method"],
            row["object_path"][:40],
            f"{row['http_status']}/{row['status_code']}",
            f"{row['reason_code'] + ': ' if row['reason_code'] else ''}{row['message'] or ''}"[:90],
        )
    console.print(table)


@app.command()
def retry(
    rejection_ids: Annotated[list[int], typer.Argument(help="rejection ids (see `list`)")],
    force: Annotated[bool, typer.Option(help="also retry reasons no hub-side fix cures")] = False,
) -> None:
    """Re-submit rejected records once the cause is fixed (e.g. a tariff published late).

    Each retry is the archived record in a new envelope, with the hub's proof, and gets its
    own outcome. Records that carried no proof of their submitter are never re-submitted.
    """
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        planned = retries.plan(conn, rejection_ids, force)
        for rejection_id, why in planned.refused.items():
            error_console.print(f"rejection {rejection_id} not re-submitted: {why}")
        asyncio.run(retries.submit(settings, planned.retries))
        for item in planned.retries:
            books.record_retry(conn, item.rejection_id, item.event_id)
    console.print(f"re-submitted {len(planned.retries)} event(s)")
    if planned.refused:
        raise typer.Exit(1)
