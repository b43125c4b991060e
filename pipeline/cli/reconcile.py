"""`roamclear reconcile --partner CC*PID --file THEIRS.csv|json [--period P] [--json]
[--report FILE.csv] [--invoice-amount A --invoice-currency C [--invoice-basis incl_vat]]`:
a partner's own list of CDRs against the hub's ledger (settlement.reconcile; the hub's side
read by settlement.store.reconcile as `roamclear_reader`). The file format: docs/ops.md.

Exit codes: 0 every CDR matched (the invoice total equal); 1 differences (amount deltas,
only theirs, only ours, duplicates in their file; an invoice total that differs or a CDR it
lists the hub did not book); 2 a bad file or option (each problem: where and why).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from pipeline.cli.common import live_settings, party_option
from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.cli.settle import policy_from_env
from pipeline.dbroles import DbRole, role_url
from schemas.hub.party import PartyRef
from settlement.money import minor_unit_exponent
from settlement.reconcile.match import Sides, check_invoice, reconcile
from settlement.reconcile.model import InvoiceCheck, Reconciliation
from settlement.reconcile.partner_file import (
    FileErrors,
    InvoiceRecord,
    PartnerList,
    parse_partner_file,
)
from settlement.reconcile.periods import PeriodLabel
from settlement.reconcile.report import report_csv
from settlement.store.db import connect
from settlement.store.reconcile import read_sides


class Basis(StrEnum):
    """Which of the hub's amounts an invoice amount is compared with."""

    INCL_VAT = "incl_vat"
    EXCL_VAT = "excl_vat"


def _options(period: str | None, amount: str | None, currency: str | None) -> tuple[
    PeriodLabel | None, tuple[Decimal, str] | None
]:  # fmt: skip
    try:
        label = None if period is None else PeriodLabel.parse(period)
    except ValueError as exc:
        raise fail(f"--period: {exc}", 2) from None
    if (amount is None) != (currency is None):
        raise fail("--invoice-amount and --invoice-currency go together", 2)
    if amount is None or currency is None:
        return label, None
    try:
        value = Decimal(amount.strip())
        if "," in amount or not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise fail(
            f"--invoice-amount: {amount!r} is not a decimal amount (e.g. 1234.50)", 2
        ) from None
    try:
        minor_unit_exponent(currency)
    except ValueError as exc:
        raise fail(f"--invoice-currency: {exc}", 2) from None
    return label, (value, currency.strip().upper())


def _read(path: Path) -> PartnerList | InvoiceRecord:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"--file: cannot read {path}: {exc.strerror}", 2) from None
    parsed = parse_partner_file(data, path.name)
    if isinstance(parsed, FileErrors):
        for problem in parsed.errors:
            error_console.print(f"{path}: {problem}", highlight=False, soft_wrap=True)
        raise fail(f"{path}: {len(parsed.errors)} problem(s); nothing was compared", 2)
    return parsed


def reconcile_command(
    partner: Annotated[str, typer.Option("--partner", help="the partner, CC*PID")],
    file: Annotated[Path, typer.Option("--file", help="their list: .csv or .json")],
    period: Annotated[
        str | None, typer.Option(help="only this period: 2026-03, 2026-W10 or 2026-03-04")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="also write every line as CSV here")
    ] = None,
    invoice_amount: Annotated[
        str | None, typer.Option(help="an invoice record's amount, e.g. 1234.50")
    ] = None,
    invoice_currency: Annotated[str | None, typer.Option(help="its currency, e.g. EUR")] = None,
    invoice_basis: Annotated[
        Basis, typer.Option(help="the invoice amount is incl. or excl. VAT")
    ] = Basis.INCL_VAT,
) -> None:
    """Compare a partner's own CDR list (or OCPI 2.3.0 invoice reconciliation record) with
    the hub's ledger: matched, amount deltas, only theirs (with why), only ours, per period.
    Exit 0 all matched, 1 differences, 2 a bad file or option. File format: docs/ops.md."""
    party = party_option(partner, "--partner")
    label, invoice = _options(period, invoice_amount, invoice_currency)
    parsed = _read(file)
    if isinstance(parsed, InvoiceRecord) != (invoice is not None):
        raise fail(
            "an invoice reconciliation record needs --invoice-amount and --invoice-currency"
            if invoice is None
            else "--invoice-amount compares an invoice reconciliation record; "
            f"{file} is a CDR list",
            2,
        )
    try:
        time_zone = policy_from_env().time_zone
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    found = _compare(party, parsed, label, invoice, invoice_basis, time_zone)
    if report is not None:
        report.write_text(report_csv(found), encoding="utf-8")
    if json_output:
        print_json(found.as_json())
    elif isinstance(found, Reconciliation):
        show(found)
    else:
        show_invoice(found)
    if report is not None and not json_output:
        console.print(f"report written to {report}")
    raise typer.Exit(0 if found.all_matched else 1)


def _compare(
    party: PartyRef,
    parsed: PartnerList | InvoiceRecord,
    label: PeriodLabel | None,
    invoice: tuple[Decimal, str] | None,
    basis: Basis,
    time_zone: str,
) -> Reconciliation | InvoiceCheck:
    wanted: list[tuple[str, PartyRef | None]]
    if isinstance(parsed, InvoiceRecord):
        wanted = [(cdr_id, None) for cdr_id in parsed.cdr_ids]
    else:
        wanted = [(row.cdr_id, row.cpo) for row in parsed.rows]
    window = None if label is None else label.window(time_zone)
    with (
        connect(role_url(live_settings(), DbRole.READER)) as conn,
        error_console.status(f"reading {party}'s CDRs from the ledger…"),
    ):
        ours, facts = read_sides(conn, party, window, wanted)
    if isinstance(parsed, InvoiceRecord):
        assert invoice is not None
        amount, currency = invoice
        return check_invoice(
            str(party), parsed, ours, facts, (amount, currency, basis.value), time_zone
        )
    return reconcile(Sides(str(party), parsed, ours, facts), label, time_zone)


def _reason(code: str | None, message: str) -> str:
    return message if code is None else f"{code}: {message}"


def _amount(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def show(found: Reconciliation) -> None:
    scope = f" in period {found.period}" if found.period else ""
    console.print(f"[bold]Reconciliation with {found.partner}{scope}[/]")
    summary = Table("class", "CDRs", title="Summary")
    for name, count in (
        ("matched", len(found.matched)),
        ("amount deltas", len(found.amount_deltas)),
        ("only in theirs", len(found.only_theirs)),
        ("only in ours", len(found.only_ours)),
        ("listed twice in theirs", len(found.duplicates_in_theirs)),
        ("their rows of another period (skipped)", len(found.outside_period)),
    ):
        summary.add_row(name, str(count))
    console.print(summary)
    if found.amount_deltas:
        table = Table(Column("CDR", overflow="fold"), "theirs excl/incl", "ours excl/incl",
                      "delta excl/incl", "period", "their rows", Column("notes", overflow="fold"),
                      Column("trace", overflow="fold"),
                      title="Amount deltas (theirs − ours)")  # fmt: skip
        for d in found.amount_deltas:
            table.add_row(
                d.cdr_key,
                f"{_amount(d.their_excl_vat)} / {_amount(d.their_incl_vat)} {d.their_currency}",
                f"{d.our_excl_vat} / {d.our_incl_vat} {d.our_currency}",
                f"{_amount(d.delta_excl_vat)} / {_amount(d.delta_incl_vat)}",
                d.period, ", ".join(d.their_rows), "; ".join(d.notes), d.trace,
            )  # fmt: skip
        console.print(table)
    if found.only_theirs:
        table = Table(Column("CDR", overflow="fold"), "theirs excl/incl", "their row", "why",
                      Column("reason", overflow="fold"), title="Only in theirs")  # fmt: skip
        for t in found.only_theirs:
            why = t.explanation
            table.add_row(
                t.cdr_key,
                f"{_amount(t.their_excl_vat)} / {_amount(t.their_incl_vat)} {t.currency}",
                t.their_row, why.cause.value,
                _reason(why.reason_code, why.message),
            )  # fmt: skip
        console.print(table)
    if found.only_ours:
        table = Table(Column("CDR", overflow="fold"), "ours excl/incl", "period",
                      Column("notes", overflow="fold"), Column("trace", overflow="fold"),
                      title="Only in ours")  # fmt: skip
        for o in found.only_ours:
            table.add_row(o.cdr_key, f"{o.our_excl_vat} / {o.our_incl_vat} {o.currency}",
                          o.period, "; ".join(o.notes), o.trace)  # fmt: skip
        console.print(table)
    for dup in found.duplicates_in_theirs:
        console.print(f"listed twice in theirs: {dup.cdr_id} at {dup.where} (first {dup.first})")
    _periods(found)


def _periods(found: Reconciliation) -> None:
    table = Table("period", "currency", "their CDRs", "their excl", "their incl", "our CDRs",
                  "our excl", "our incl", title="Per period")  # fmt: skip
    for p in found.periods:
        table.add_row(p.period, p.currency, str(p.their_count), str(p.their_excl_vat),
                      str(p.their_incl_vat), str(p.our_count), str(p.our_excl_vat),
                      str(p.our_incl_vat))  # fmt: skip
    console.print(table)


def show_invoice(check: InvoiceCheck) -> None:
    owner = f" (record {check.record_id} of {check.record_owner})" if check.record_owner else ""
    console.print(f"[bold]Invoice {check.invoice_id}{owner} against {check.partner}'s CDRs[/]")
    table = Table(Column("CDR", overflow="fold"), "hub excl/incl", Column("why", overflow="fold"))
    for line in check.lines:
        why = line.explanation
        table.add_row(
            line.cdr_key or line.cdr_id,
            "-" if line.currency is None
            else f"{line.amount_excl_vat} / {line.amount_incl_vat} {line.currency}",
            "" if why is None else f"{why.cause.value}: {_reason(why.reason_code, why.message)}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"hub total {check.hub_total_excl_vat} excl. / {check.hub_total_incl_vat} incl. VAT "
        f"{check.currency} ({check.hub_total_rounded} {check.basis} to the minor unit); invoice "
        f"{check.invoice_amount} {check.basis}; delta (invoice − hub) {check.delta}"
    )
    if check.other_currency:
        console.print(f"booked in another currency: {', '.join(check.other_currency)}")
    for dup in check.duplicates:
        console.print(f"listed twice: {dup.cdr_id} at {dup.where} (first {dup.first})")


def register(root: typer.Typer) -> None:
    """Mount `reconcile` on the root `roamclear` app."""
    root.command("reconcile")(reconcile_command)
