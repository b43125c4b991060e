"""`roamclear trace CDR_KEY [--json] [--tariff]`: everything that made one CDR's figures
(settlement.cdr_trace; read by settlement.store.trace as `roamclear_reader`).

Exit codes: 0 traced; 1 nothing names the key; 2 the key is not a CDR key (CC*PID*ID).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Column, Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, fail, print_json
from pipeline.cli.rate import explain_table
from pipeline.dbroles import DbRole, role_url
from schemas.hub.party import CdrKey
from settlement.cdr_trace import CdrTrace, Pricing, TransactionTrace
from settlement.store.db import connect
from settlement.store.trace import TraceNotFound, read_trace, stored_tariff_body
from settlement.store.urls import redacted


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"


def parse_key(text: str) -> CdrKey:
    """The canonical key (any case); exits 2 saying why when `text` is not one."""
    try:
        return CdrKey.parse(text.strip())
    except ValueError as exc:
        raise fail(
            f"CDR_KEY: {exc}; expected CC*PID*ID, e.g. 'NL*TNM*CDR-1' (the CDR's country_code, "
            "party_id and id; quote it in a shell)",
            2,
        ) from None


def trace(
    cdr_key: Annotated[str, typer.Argument(help="the CDR key CC*PID*ID, e.g. 'NL*TNM*CDR-1'")],
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    tariff: Annotated[
        bool, typer.Option("--tariff", help="print the stored tariff version that priced it")
    ] = False,
) -> None:
    """Everything that made a CDR's figures: its archived records and outcomes, the tariff,
    location and agreement versions, the per-period price, declared vs computed totals, its
    transactions and postings with their statements, credits, deliveries to the eMSP, and
    disputes (history, and the adjustment that settled one)."""
    key = parse_key(cdr_key)
    settings = live_settings()
    url = role_url(settings, DbRole.READER)
    with connect(url) as conn:
        try:
            found = read_trace(conn, key)
        except TraceNotFound as exc:
            raise fail(f"{exc}; searched {redacted(url)}") from None
        body = stored_tariff_body(conn, found) if tariff else None
    if tariff:
        if body is None:
            raise fail(f"{key}: no stored tariff version priced it (see `roamclear trace`)")
        typer.echo(json.dumps(body, indent=2, default=str))
    elif json_output:
        print_json(found.as_json())
    else:
        show(found)


def show(found: CdrTrace) -> None:
    console.print(
        f"[bold]CDR {found.cdr_key}[/]  CPO {found.cpo} → eMSP {found.emsp or '(never booked)'}"
    )
    _records(found)
    if found.pricing is not None:
        _pricing(found.pricing)
    for transaction in found.transactions:
        _transaction(transaction)
    _deliveries(found)
    _disputes(found)


def _records(found: CdrTrace) -> None:
    topics = ", ".join(sorted({r.topic for r in found.records})) or "none"
    table = Table(
        "archive", "partition @ offset", "broker time", Column("CDR", overflow="fold"),
        "submitter (proof)", Column("HTTP request / correlation", overflow="fold"), "outcome",
        title=f"Records that carried it ({topics})",
    )  # fmt: skip
    kinds = {t.transaction_id: t.kind for t in found.transactions}
    for r in found.records:
        outcome = r.outcome
        # a transaction by its kind and first 8 digits: the sections below give it in full
        told = (
            f"→ {kinds.get(outcome.transaction_id, '')} {outcome.transaction_id[:8]}"
            if outcome.transaction_id
            else f"{outcome.reason_code}: {outcome.message}"
        )
        table.add_row(
            str(r.archive_id),
            f"{r.partition} @ {r.offset}",
            _when(r.broker_time),
            r.cdr_key or "-",
            f"{r.authenticated_submitter or r.claimed_submitter or '-'} ({r.proof or 'no proof'})",
            "-" if r.http is None else f"{r.http.request_id} / {r.http.correlation_id}",
            f"{outcome.outcome} {told}",
        )
    for refused in found.refused_at_ingest:
        http = refused.http
        table.add_row(
            "-",
            "refused at the OCPI door",
            _when(refused.rejected_at),
            found.cdr_key,
            "-" if http is None else http.partner,
            "-" if http is None else f"{http.request_id} / {http.correlation_id}",
            f"REJECTED {refused.reason_code}: {refused.message}",
        )
    console.print(table)
    if found.hidden_records:
        console.print(f"{found.hidden_records} record(s) of other submitters not shown")


def _pricing(pricing: Pricing) -> None:
    tariff, agreement, location = pricing.tariff, pricing.agreement, pricing.location
    console.print(
        f"[bold]Tariff[/] {tariff.tariff_key} last_updated {_when(tariff.last_updated)} "
        f"hash {tariff.content_hash} ({'stored' if tariff.stored else 'embedded'}; {tariff.fetch})"
    )
    console.print(
        f"[bold]Location[/] {location.location_id or '-'} time zone {location.time_zone or '-'} "
        f"(version {_when(location.version_last_updated)})"
    )
    console.print(
        f"[bold]Agreement[/] {agreement.agreement_id} v{agreement.version}: rounding "
        f"{agreement.rounding_mode} to {agreement.rounding_decimals} decimals, settles "
        f"{agreement.settles}, fee paid by {agreement.fee_payer}, {agreement.settlement_period}"
    )
    totals = pricing.totals
    table = Table("total", "excl. VAT", "incl. VAT", title="Declared vs computed")
    for name, excl, incl in (
        ("declared by the CPO", totals.declared_excl_vat, totals.declared_incl_vat),
        ("computed by the hub", totals.computed_excl_vat, totals.computed_incl_vat),
        ("settled", totals.settled_excl_vat, totals.settled_incl_vat),
    ):
        table.add_row(name, str(excl), str(incl))
    console.print(table)
    console.print(
        f"fee {totals.fee}, eMSP owes {totals.emsp_owes}, CPO owed {totals.cpo_owed}"
        + (f", {totals.price_limit} applied" if totals.price_limit else "")
    )
    breakdown = pricing.breakdown
    matches = breakdown.matches_booking
    console.print(
        f"[bold]Per-period price[/] ({breakdown.source.value}"
        + ("" if matches is None else f", gives the booked total back: {matches}")
        + (f"; {breakdown.note}" if breakdown.note else "")
        + ")"
    )
    if breakdown.rated is not None:
        console.print(explain_table(breakdown.rated))


def _transaction(transaction: TransactionTrace) -> None:
    link = (
        f" reverses {transaction.reverses}"
        if transaction.reverses
        else f" reversed by {transaction.reversed_by}"
        if transaction.reversed_by
        else ""
    )
    console.print(
        f"[bold]{transaction.kind}[/] {transaction.transaction_id} of {transaction.cdr_key}"
        f"{link}, booked {_when(transaction.booked_at)}, {transaction.amount_excl_vat} excl. / "
        f"{transaction.amount_incl_vat} incl. VAT {transaction.currency}"
    )
    table = Table("posting", "account", "side", "amount", "period", "statement line")
    for p in transaction.postings:
        statement = p.statement
        table.add_row(
            str(p.posting_id),
            p.account,
            p.side,
            f"{p.amount} {p.currency}",
            p.settlement_period,
            ("hub account: on no statement" if p.account.startswith("hub:") else "not settled yet")
            if statement is None
            else f"statement {statement.statement_id} ({statement.period_start:%Y-%m-%d}"
            f"..{statement.period_end:%Y-%m-%d}{', late' if statement.late else ''}) "
            f"line {p.posting_id}",
        )
    console.print(table)


def _deliveries(found: CdrTrace) -> None:
    if not found.deliveries:
        console.print("Deliveries: none recorded")
        return
    table = Table("delivery", "transaction", "eMSP", "state", "attempts", "request id", "delivered")
    for d in found.deliveries:
        table.add_row(
            str(d.delivery_id),
            f"{d.kind} {d.transaction_id}",
            d.emsp,
            d.state + (f" ({d.last_error})" if d.last_error else ""),
            str(d.attempts),
            d.request_id or "-",
            _when(d.delivered_at),
        )
    console.print(table)


def _disputes(found: CdrTrace) -> None:
    if not found.disputes:
        console.print("Disputes: none")
        return
    for traced in found.disputes:
        d = traced.dispute
        settled = (
            f", settled by the credit CDR {d.credit_cdr_key}"
            if d.credit_cdr_key
            else f", settled by ADJUSTMENT {d.adjustment_id}"
            if d.adjustment_id
            else ""
        )
        console.print(
            f"[bold]Dispute {d.dispute_id}[/] by {d.opened_by}: {d.reason.value}, claims "
            f"{d.claimed_amount} {d.currency}; {d.state.value}{settled}",
            highlight=False,
        )
        table = Table("#", "from → to", "by", "recorded by", "when", Column("why", overflow="fold"))
        for t in d.history:
            edge = f"{t.from_state.value if t.from_state else '-'} → {t.to_state.value}"
            table.add_row(str(t.seq), edge, t.actor, t.recorded_by, _when(t.at), t.note)
        console.print(table)
        if traced.adjustment is not None:
            _transaction(traced.adjustment)


def register(root: typer.Typer) -> None:
    """Mount `trace` on the root `roamclear` app."""
    root.command("trace")(trace)
