"""`roamclear disputes open|list|show|accept|decline|withdraw|write-off` (docs/disputes.md):
a thin shell over settlement.store.disputes, as the operator role (reads as the reader)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import live_settings, party_option
from pipeline.cli.console import console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from settlement.disputes import HUB, Action, Dispute, DisputeError, DisputeState
from settlement.store import disputes as store
from settlement.store.db import connect

app = typer.Typer(help="Disputes of booked CDRs: open, decide, withdraw, and their history.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]
NoteOpt = Annotated[str, typer.Option("--note", help="why (every decision says why)")]
IdArg = Annotated[int, typer.Argument(help="the dispute's id")]


def _recorded_by() -> str:
    return f"cli:{getpass.getuser()}"


def _print(dispute: Dispute) -> None:
    credit = f"  credit {dispute.credit_cdr_key}" if dispute.credit_cdr_key else ""
    if dispute.adjustment_id:
        credit = f"  adjustment DISPUTE*{dispute.dispute_id} ({dispute.adjustment_id})"
    console.print(
        f"[bold]dispute {dispute.dispute_id}[/]  {dispute.cdr_key} by {dispute.opened_by}  "
        f"{dispute.reason.value}  claims {dispute.claimed_amount} {dispute.currency}  "
        f"[bold]{dispute.state.value}[/]{credit}"
    )
    if dispute.note:
        console.print(f"  {dispute.note}", highlight=False)
    table = Table("#", "at", "from", "to", "actor", "recorded by", "note")
    for t in dispute.history:
        table.add_row(
            str(t.seq),
            f"{t.at:%Y-%m-%d %H:%M:%S}",
            "-" if t.from_state is None else t.from_state.value,
            t.to_state.value,
            t.actor,
            t.recorded_by,
            t.note,
        )
    console.print(table)


def _emit(dispute: Dispute, json_output: bool) -> None:
    if json_output:
        print_json(dispute.json())
    else:
        _print(dispute)


@app.command("open")
def open_(
    cdr: Annotated[str, typer.Option("--cdr", help="the booked CDR's key CC*PID*ID")],
    by: Annotated[str, typer.Option("--by", help="the CDR's CPO or eMSP, CC*PID")],
    reason: Annotated[str, typer.Option(help="AMOUNT_INCORRECT, TARIFF_INCORRECT, …")],
    claimed_amount: Annotated[str, typer.Option(help="in the CDR's currency, e.g. 4.50")],
    note: Annotated[str, typer.Option(help="what the partner says")] = "",
    json_output: JsonOpt = False,
) -> None:
    """Open a dispute of a booked CDR on behalf of its CPO or eMSP."""
    party = str(party_option(by, "--by"))
    with connect(role_url(live_settings(), DbRole.OPERATOR)) as conn:
        try:
            dispute = store.open_dispute(
                conn, cdr.upper(), party, reason.upper(), claimed_amount, note, _recorded_by()
            )
        except DisputeError as exc:
            raise fail(f"dispute of {cdr} refused: {exc}", 1) from None
        conn.commit()
    _emit(dispute, json_output)


@app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(help="open, accepted, declined, …")] = None,
    partner: Annotated[str | None, typer.Option(help="opened by this party, CC*PID")] = None,
    limit: Annotated[int, typer.Option(min=1, max=store.LIST_LIMIT_MAX)] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Disputes, newest first."""
    party = None if partner is None else str(party_option(partner, "--partner"))
    try:
        wanted = None if state is None else DisputeState(state.lower())
    except ValueError:
        states = ", ".join(s.value for s in DisputeState)
        raise fail(f"--state must be one of {states}, not {state!r}", 2) from None
    with connect(role_url(live_settings(), DbRole.READER)) as conn:
        rows = store.list_disputes(conn, wanted, party, limit)
    if json_output:
        print_json([d.json() for d in rows])
        return
    table = Table("id", "CDR", "by", "reason", "claimed", "state", "opened")
    for d in rows:
        table.add_row(
            str(d.dispute_id),
            d.cdr_key,
            d.opened_by,
            d.reason.value,
            f"{d.claimed_amount} {d.currency}",
            d.state.value,
            f"{d.opened_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@app.command()
def show(dispute_id: IdArg, json_output: JsonOpt = False) -> None:
    """A dispute with its whole history (who, when, why)."""
    with connect(role_url(live_settings(), DbRole.READER)) as conn:
        try:
            dispute = store.show(conn, dispute_id)
        except DisputeError as exc:
            raise fail(str(exc), 1) from None
    _emit(dispute, json_output)


def _move(
    dispute_id: int,
    action: Action,
    note: str,
    credit: str | None = None,
    amount: str | None = None,
) -> None:
    with connect(role_url(live_settings(), DbRole.OPERATOR)) as conn:
        try:
            actor = HUB
            if action is Action.WITHDRAW:  # on behalf of the party that opened it
                actor = store.show(conn, dispute_id).opened_by
            dispute = store.move(
                conn, dispute_id, action, actor, note, _recorded_by(),
                credit and credit.upper(), amount,
            )  # fmt: skip
        except DisputeError as exc:
            raise fail(f"{action.value} dispute {dispute_id} refused: {exc}", 1) from None
        conn.commit()
    _print(dispute)


@app.command()
def accept(
    dispute_id: IdArg,
    note: NoteOpt,
    credit: Annotated[
        str | None,
        typer.Option("--credit", help="the CPO's booked credit CDR's key: it must reverse the CDR"),
    ] = None,
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount",
            help="or: book a hub ADJUSTMENT of this amount (at most the claimed one) into the "
            "open period: the opener credited, the other party debited",
        ),
    ] = None,
) -> None:
    """Accept: by the CPO's credit CDR (already booked) that reversed the disputed CDR, or by
    a hub adjustment. Exactly one of --credit and --amount."""
    _move(dispute_id, Action.ACCEPT, note, credit, amount)


@app.command()
def decline(dispute_id: IdArg, note: NoteOpt) -> None:
    """Decline, with the hub's reasoning in the note."""
    _move(dispute_id, Action.DECLINE, note)


@app.command()
def withdraw(dispute_id: IdArg, note: NoteOpt) -> None:
    """Withdraw on behalf of the party that opened it."""
    _move(dispute_id, Action.WITHDRAW, note)


@app.command("write-off")
def write_off(dispute_id: IdArg, note: NoteOpt) -> None:
    """Accepted, settled outside the ledger (the note says how)."""
    _move(dispute_id, Action.WRITE_OFF, note)
