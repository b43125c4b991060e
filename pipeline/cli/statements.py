"""``roamclear statements``: settlement statements of closed batches.

    roamclear statements list [--partner NL*TNM] [--from 2025-05-01] [--to 2025-06-01] [--json]
    roamclear statements show ID [--json]
    roamclear statements export ID --format csv|json|pdf [-o FILE]
    roamclear statements verify ID [--json]          exit 1 when the ledger no longer matches
    roamclear statements token create --finance | --partner NL*TNM [--label L] [--expires 90d]
    roamclear statements token list [--json]         ids, scopes, dates; never a token
    roamclear statements token revoke ID [--reason R]

Disputes are marked as of now, outside the sealed figures, in every form (``show``, its
``--json``, and the CSV, JSON and PDF exports): the disputed lines, each dispute on them, and
the count in ``disputed_lines``; an adjustment's mark names the CDR it adjusts and its
period. ``list --json`` gives objects with ``id``, ``partner``, ``currency``, ``period_start``,
``period_end``, ``net_amount`` (signed decimal string, positive when the hub pays the
partner), ``postings`` and ``seal_status`` (the stored row's seal, checked without reading
the ledger). ``show`` prints the stored figures and verifies them against the ledger, in red
when they no longer match; ``export`` refuses a statement that does not verify. Seals are
checked with the hub keyring (pipeline.hubkeys). The lead mounts it with
``app.add_typer(statements.app, name="statements")``.
"""

from __future__ import annotations

import io
import itertools
import json
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.api.tokens import (
    TOKEN_ID_CHARS,
    TokenRefused,
    TokenStatus,
    create_token,
    list_tokens,
    revoke_token,
    token_hash,
)
from pipeline.cli.common import live_settings
from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_seal_keys
from schemas.hub.party import PartyRef
from settlement.batches.periods import utc_unless_offset
from settlement.batches.seal import SealKeys, SealStatus
from settlement.disputes import StatementMark, mark_statement, marks_text
from settlement.keys import HubKeyInvalid
from settlement.statements.build import statement_json
from settlement.statements.model import Statement
from settlement.statements.pdf import render_pdf
from settlement.store.db import connect
from settlement.store.disputes import statement_marks
from settlement.store.statements import (
    StatementNotFound,
    Verification,
    iter_statements,
    list_statements,
    load_statement,
    verify,
)
from settlement.store.statements_csv import export_csv

app = typer.Typer(
    help="Settlement statements: list, show, export, verify; API tokens.", no_args_is_help=True
)
token_app = typer.Typer(help="Finance API bearer tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]
_DATES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PDF = "pdf"


_SEAL_STYLE = {
    SealStatus.VALID: "green",
    SealStatus.UNSEALED: "yellow",
    SealStatus.INVALID: "bold red",
    SealStatus.UNKNOWN_KEY: "bold red",
}


def _settings() -> Settings:
    settings = live_settings()
    assert settings.database_url is not None
    return settings


def _operator_url() -> str:
    """Tokens are the operator's: it may append them and their revocations, nothing else."""
    return role_url(_settings(), DbRole.OPERATOR)


def _servers() -> tuple[str, SealKeys]:
    """The database, as the read-only role, and the keys that check statement seals."""
    settings = _settings()
    try:
        return role_url(settings, DbRole.READER), load_seal_keys(settings)
    except HubKeyInvalid as exc:
        raise fail(str(exc), 2) from exc


def _verdict(result: Verification) -> str:
    """One line on what verify found (rich markup)."""
    if not result.matches:
        return (
            f"[bold red]statement {result.batch_id} is NOT verified: the ledger no longer "
            "matches what was closed and sealed[/]"
        )
    if result.seal_status is SealStatus.UNSEALED:
        return (
            f"statement {result.batch_id} matches the ledger (checksum "
            f"{result.stored_checksum}); [yellow]unsealed (closed before sealing)[/]"
        )
    return (
        f"[green]statement {result.batch_id} matches the ledger and its seal[/] (key "
        f"{result.seal_key_id}, chain intact, checksum {result.stored_checksum})"
    )


def _print_verification(result: Verification) -> None:
    console.print(_verdict(result), highlight=False)
    for difference in result.differences:
        console.print(f"  {difference}", highlight=False)


def _partner(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(PartyRef.parse(text))
    except ValueError as exc:
        raise fail(str(exc), 2) from exc


@app.command("list")
def list_command(
    partner: Annotated[str | None, typer.Option("--partner", help="CC*PID")] = None,
    period_from: Annotated[
        datetime | None,
        typer.Option(
            "--from", formats=_DATES, help="periods ending after this (UTC unless an offset)"
        ),
    ] = None,
    period_to: Annotated[
        datetime | None,
        typer.Option(
            "--to", formats=_DATES, help="periods starting before this (UTC unless an offset)"
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="at most this many (default: all)")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Closed statements in the order they closed, each with its seal checked (stored row);
    every one of them unless ``--limit`` (then it says how many it left out)."""
    url, keys = _servers()
    party = _partner(partner)
    with connect(url) as conn:
        listing = iter_statements(conn, keys, party, period_from, period_to)
        found = list(itertools.islice(listing, limit))
        total = list_statements(conn, keys, party, period_from, period_to, 1).total
    if len(found) < total:
        error_console.print(
            f"showing {len(found)} of {total} statements (--limit {limit})", highlight=False
        )
    failing = [s.batch_id for s in found if s.seal_status in _FAILING]
    if failing:
        error_console.print(
            f"[bold red]warning:[/] {len(failing)} of {len(found)} statements fail their "
            "seal check "
            f"({', '.join(map(str, failing[:20]))}{' …' if len(failing) > 20 else ''}): "
            "run `roamclear statements verify ID`",
            highlight=False,
        )
    if json_output:
        print_json([item.json() for item in found])
        return
    table = Table(title=f"{len(found)} of {total} statements")
    for column in ("id", "partner", "currency", "period", "start", "end", "postings", "late"):
        table.add_column(column)
    table.add_column("net amount", justify="right")
    table.add_column("seal")
    for s in found:
        table.add_row(
            str(s.batch_id),
            s.partner,
            s.currency,
            s.period_kind,
            s.period_start.isoformat(),
            s.period_end.isoformat(),
            str(s.postings),
            str(s.late_postings),
            str(s.net_amount),
            f"[{_SEAL_STYLE[s.seal_status]}]{s.seal_status.value}[/]",
        )
    console.print(table)


_FAILING = (SealStatus.INVALID, SealStatus.UNKNOWN_KEY)


def _load(statement_id: int) -> tuple[Statement, Verification, tuple[StatementMark, ...]]:
    url, keys = _servers()
    with connect(url) as conn:
        try:
            statement = load_statement(conn, statement_id)
            return statement, verify(conn, statement_id, keys), statement_marks(conn, statement_id)
        except StatementNotFound as exc:
            raise fail(str(exc), 2) from exc


def _disputed_table(statement: Statement, marks: tuple[StatementMark, ...]) -> Table | None:
    """The disputed lines, each with its disputes (None: no line is disputed)."""
    header = statement.header
    texts = marks_text(marks, header.period_kind, header.settlement_tz)
    disputed = [line for line in statement.lines if line.transaction_id in texts]
    if not disputed:
        return None
    table = Table("posting", "CDR", "kind", "net", "disputes", title="disputed lines (as of now)")
    for line in disputed:
        table.add_row(
            str(line.posting_id), line.cdr_key, line.kind.value, str(line.net),
            texts[line.transaction_id],
        )  # fmt: skip
    return table


@app.command("show")
def show(
    statement_id: Annotated[int, typer.Argument(help="statement (batch) id")],
    json_output: JsonOpt = False,
) -> None:
    """Header, stored totals and VAT of one statement, verified against the ledger and its
    seal (``--json``: with every line and a ``verification`` object)."""
    statement, result, marks = _load(statement_id)
    if json_output:
        body = mark_statement(statement_json(statement), marks)
        body["verification"] = result.json()
        print_json(body)
        if not result.matches:
            error_console.print(_verdict(result), highlight=False)
        return
    body = mark_statement(statement_json(statement), marks)
    head = Table(show_header=False, title=f"statement {statement_id}")
    for name in (
        "partner",
        "roles",
        "currency",
        "period_kind",
        "period_start",
        "period_end",
        "settlement_tz",
        "checksum",
        "seal",
        "seal_key_id",
        "created_at",
        "closed_at",
    ):
        value = body[name]
        head.add_row(name, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(head)
    totals = Table("total", "amount", title=f"totals as closed ({statement.header.currency})")
    for name, value in body["totals"].items():
        totals.add_row(name, str(value))
    console.print(totals)
    if body["vat_breakdown"]:
        vat = Table("role", "VAT %", "excl. VAT", "incl. VAT", title="VAT breakdown")
        for row in body["vat_breakdown"]:
            vat.add_row(row["role"], str(row["vat"] or "unknown"), row["excl_vat"], row["incl_vat"])
        console.print(vat)
    disputed = _disputed_table(statement, marks)
    if disputed is not None:
        console.print(disputed)
    _print_verification(result)


@app.command("export")
def export(
    statement_id: Annotated[int, typer.Argument(help="statement (batch) id")],
    export_format: Annotated[ExportFormat, typer.Option("--format", help="csv, json or pdf")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file (default stdout)")
    ] = None,
) -> None:
    """Write one statement as CSV, JSON or PDF; refused (exit 1) when it does not verify."""
    if export_format is ExportFormat.PDF and output is None and sys.stdout.isatty():
        raise fail("a PDF on a terminal: pass -o FILE", 2)
    url, keys = _servers()
    with connect(url) as conn:
        try:
            result = verify(conn, statement_id, keys)
            if not result.matches:
                error_console.print(_verdict(result), highlight=False)
                for difference in result.differences:
                    error_console.print(f"  {difference}", highlight=False)
                raise fail("not exported: a statement that does not verify is not a document", 1)
            marks = statement_marks(conn, statement_id)
            if export_format is ExportFormat.CSV:
                buffer = io.StringIO()
                export_csv(conn, statement_id, buffer, marks)
                data = buffer.getvalue().encode()
            elif export_format is ExportFormat.JSON:
                body = mark_statement(statement_json(load_statement(conn, statement_id)), marks)
                data = (json.dumps(body, indent=2) + "\n").encode()
            else:
                data = render_pdf(load_statement(conn, statement_id), marks)
        except StatementNotFound as exc:
            raise fail(str(exc), 2) from exc
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
        console.print(f"wrote {output} ({len(data):,} bytes)")


@app.command("verify")
def verify_command(
    statement_id: Annotated[int, typer.Argument(help="statement (batch) id")],
    json_output: JsonOpt = False,
) -> None:
    """Recompute totals and checksum from the ledger, check the seal and the link to the
    previous batch; exit 1 when anything no longer matches."""
    url, keys = _servers()
    with connect(url) as conn:
        try:
            result = verify(conn, statement_id, keys)
        except StatementNotFound as exc:
            raise fail(str(exc), 2) from exc
    if json_output:
        print_json(result.json())
    else:
        _print_verification(result)
    if not result.matches:
        raise typer.Exit(1)


_EXPIRY_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1)}


def _expiry(text: str | None) -> datetime | None:
    """``90d`` or ``12h`` from now, or a date or time (UTC unless it carries an offset: a
    date is its midnight UTC, when the token stops working)."""
    if text is None:
        return None
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in _EXPIRY_UNITS:
        return datetime.now(UTC) + int(text[:-1]) * _EXPIRY_UNITS[text[-1]]
    try:
        return utc_unless_offset(datetime.fromisoformat(text))
    except ValueError as exc:
        raise fail(
            f"--expires {text!r}: give 90d, 12h, 2026-03-31 or 2026-03-31T12:00Z", 2
        ) from exc


@token_app.command("create")
def token_create(
    finance: Annotated[bool, typer.Option("--finance", help="sees every statement")] = False,
    partner: Annotated[
        str | None, typer.Option("--partner", help="sees only CC*PID's (a registered partner)")
    ] = None,
    label: Annotated[str, typer.Option("--label", help="a note on who holds it")] = "",
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="90d, 12h, or a date/time (UTC unless an offset)"),
    ] = None,
) -> None:
    """Create a bearer token and print it once (only its sha256 is stored)."""
    if finance == (partner is not None):
        raise fail("pass exactly one of --finance and --partner CC*PID", 2)
    expires_at = _expiry(expires)
    with connect(_operator_url()) as conn:
        try:
            token = create_token(conn, _partner(partner), label, expires_at)
        except TokenRefused as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    until = "no expiry" if expires_at is None else f"expires {expires_at.isoformat()}"
    error_console.print(
        f"token {token_hash(token)[:TOKEN_ID_CHARS]} ({until}); shown once, keep it safe",
        highlight=False,
    )
    typer.echo(token)


@token_app.command("list")
def token_list(json_output: JsonOpt = False) -> None:
    """Every token: id (a prefix of its hash), scope, partner, label, dates, status. The
    tokens themselves are never stored, so never shown."""
    with connect(_operator_url()) as conn:
        tokens = list_tokens(conn)
    if json_output:
        print_json([t.json() for t in tokens])
        return
    table = Table(title=f"{len(tokens)} finance API tokens")
    for column in ("id", "scope", "partner", "label", "created", "expires", "status"):
        table.add_column(column)
    style = {TokenStatus.ACTIVE: "green", TokenStatus.EXPIRED: "yellow"}
    for t in tokens:
        status = t.status.value
        if t.revoked_at is not None:
            status += f" {t.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(
            t.token_id,
            t.scope,
            t.partner or "-",
            t.label,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            "-" if t.expires_at is None else t.expires_at.isoformat(),
            f"[{style.get(t.status, 'red')}]{status}[/]",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="the id from `token list`")],
    reason: Annotated[str, typer.Option("--reason", help="why, for the record")] = "",
) -> None:
    """Revoke a token: the API answers 401 to it from now on (recorded, never deleted)."""
    with connect(_operator_url()) as conn:
        try:
            info = revoke_token(conn, token_id, reason)
        except TokenRefused as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    who = info.partner or "every statement"
    console.print(f"revoked token {info.token_id} ({info.scope}, {who})", highlight=False)
