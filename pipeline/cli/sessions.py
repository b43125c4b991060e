"""`roamclear sessions missing-cdrs|list|show|rejected`: sessions and the CDRs they owe.

    roamclear sessions missing-cdrs [--partner NL*TNM] [--stale-h 24] [--as-of …] [--json]
    roamclear sessions list [--partner NL*TNM] [--status ACTIVE] [--limit 100] [--json]
    roamclear sessions show NL*TNM*SES-0001 [--json]
    roamclear sessions rejected [--partner NL*TNM] [--json]

Read as roamclear_reader. `missing-cdrs` is the report finance also gets from
`GET /finance/v1/sessions/missing-cdrs` (pipeline.api.sessions).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from schemas.hub.party import PartyRef
from schemas.ocpi.enums import SessionStatus
from settlement.sessions.missing import SESSION_STALE_H_MAX
from settlement.store import missing_cdrs as reports
from settlement.store import session_pushes
from settlement.store.db import connect

app = typer.Typer(
    help="Sessions pushed over OCPI, and the CDRs they should end with.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]
PartnerOpt = Annotated[
    str | None, typer.Option(help="only sessions this party is the CPO or the eMSP of, CC*PID")
]


def _partner(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(PartyRef.parse(text))
    except ValueError as exc:
        raise fail(f"--partner: {exc}", 2) from None


def _reader() -> str:
    settings = live_settings()
    assert settings.database_url is not None
    return role_url(settings, DbRole.READER)


@app.command("missing-cdrs")
def missing_cdrs(
    partner: PartnerOpt = None,
    stale_h: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=SESSION_STALE_H_MAX,
            help="hours without an update after which an unfinished session is stale "
            "(default ROAMCLEAR_SESSION_STALE_H, 24)",
        ),
    ] = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="evaluate deadlines at this UTC time (default: now)")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """COMPLETED sessions without a booked CDR past their agreement's deadline (48 h by
    default), and PENDING/ACTIVE/RESERVATION sessions not updated for the stale time.
    INVALID sessions never appear."""
    settings = live_settings()
    assert settings.database_url is not None
    now = datetime.now(UTC) if as_of is None else as_of.replace(tzinfo=as_of.tzinfo or UTC)
    hours = settings.session_stale_h if stale_h is None else stale_h
    with connect(role_url(settings, DbRole.READER)) as conn:
        findings = reports.missing_cdrs(conn, now, hours, _partner(partner))
    rows = [finding.json(now) for finding in findings]
    if json_output:
        print_json(rows)
        return
    table = Table("kind", "session", "eMSP", "status", "since", "due", "overdue h", "rejected CDRs")
    for row in rows:
        table.add_row(
            row["kind"],
            row["session"],
            row["emsp"],
            row["status"],
            row["since"],
            f"{row['due_at']} ({row['limit_h']} h)",
            row["overdue_h"],
            ", ".join(row["rejected_cdrs"]) or "-",
        )
    console.print(table)
    missing = sum(1 for row in rows if row["kind"] == "MISSING_CDR")
    console.print(f"{missing} missing CDR(s), {len(rows) - missing} stale session(s)")


@app.command("list")
def list_(
    partner: PartnerOpt = None,
    status: Annotated[SessionStatus | None, typer.Option(help="only this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=reports.LIST_LIMIT_MAX)] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Sessions as the worker holds them now, most recently updated first."""
    with connect(_reader()) as conn:
        rows = reports.list_sessions(
            conn, _partner(partner), None if status is None else status.value, limit
        )
    if json_output:
        print_json(rows)
        return
    table = Table("session", "eMSP", "status", "start", "end", "kWh", "versions", "CDR booked")
    for row in rows:
        table.add_row(
            row["session_key"],
            row["emsp"],
            row["status"],
            f"{row['start_date_time']:%Y-%m-%d %H:%M}",
            "-" if row["end_date_time"] is None else f"{row['end_date_time']:%Y-%m-%d %H:%M}",
            str(row["kwh"]),
            str(row["versions"]),
            "yes" if row["cdr_booked"] else "no",
        )
    console.print(table)


@app.command()
def show(
    session: Annotated[str, typer.Argument(help="CC*PID*SESSION_ID, e.g. NL*TNM*SES-0001")],
    json_output: JsonOpt = False,
) -> None:
    """One session: its current state, every version, its CDRs and its pushes."""
    key = session.upper()
    with connect(_reader()) as conn:
        history = reports.session_history(conn, key)
        pushes = session_pushes.pushes(conn, key)
    if history is None and not pushes:
        raise fail(f"no session {key}")
    found: dict[str, Any] = {**(history or {"current": None, "versions": [], "cdrs": []})}
    found["pushes"] = pushes
    if json_output:
        print_json(found)
        return
    current = found["current"]
    if current is not None:
        console.print(
            f"[bold]{key}[/] {current['status']}, {current['kwh']} kWh, eMSP {current['emsp']}, "
            f"{current['versions']} version(s)"
        )
    for title, rows in (
        ("versions", found["versions"]),
        ("CDRs", found["cdrs"]),
        ("pushes", pushes),
    ):
        if rows:
            table = Table(*rows[0].keys(), title=title)
            for row in rows:
                table.add_row(*("-" if v is None else str(v) for v in row.values()))
            console.print(table)


@app.command()
def rejected(
    partner: Annotated[str | None, typer.Option(help="only this partner's pushes, CC*PID")] = None,
    limit: Annotated[int, typer.Option(min=1, max=reports.LIST_LIMIT_MAX)] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Session pushes the OCPI receiver refused, newest first, with the reason."""
    with connect(_reader()) as conn:
        rows = session_pushes.rejected_pushes(conn, _partner(partner), limit)
    if json_output:
        print_json(rows)
        return
    table = Table(
        "push", "received", "partner", "method", "URL", "HTTP", "OCPI", "reason", "message"
    )
    for row in rows:
        url = "/".join((row["url_country_code"], row["url_party_id"], row["url_session_id"]))
        table.add_row(
            str(row["push_id"]),
            f"{row['received_at']:%Y-%m-%d %H:%M:%S}",
            row["partner"],
            row["method"],
            url[:60],
            str(row["http_status"]),
            str(row["status_code"]),
            row["reason_code"],
            (row["message"] or "")[:80],
        )
    console.print(table)
