"""`roamclear replay --from T1 --to T2 [--partner CC*PID] [--reference as-booked|current|as-of T]
[--json] [--report FILE.csv]`: a shadow re-price of the archived records in a time range
(settlement.replay; read by settlement.store.replay as `roamclear_reader`). Nothing is
written but the report file.

Exit codes: 0 replayed; 2 bad arguments.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from pipeline.cli.common import live_settings, party_option
from pipeline.cli.console import console, fail, print_json
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.gctune import tuned_gc
from pipeline.hubkeys import load_hub_keyring, record_proof_keys
from pipeline.topics import Topic, topic_name
from settlement.batches.periods import utc_unless_offset
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.replay.corrections import corrections
from settlement.replay.model import Change, Reference, ReferenceMode, Verdict
from settlement.replay.report import Totals, effect, verdict_json, write_csv
from settlement.store import replay_apply
from settlement.store.db import connect
from settlement.store.replay import ReplayRange
from settlement.store.replay import replay as run_replay
from settlement.store.replay_apply import AppliedRun, RunNotFound

# Changed records listed in the table (all of them in --json and --report).
TABLE_ROWS_MAX = 50


def parse_moment(text: str, option: str) -> datetime:
    """A time given by a person (UTC unless it carries an offset); exits 2 saying why."""
    try:
        return utc_unless_offset(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise fail(
            f"{option} {text!r}: give a date or a time, e.g. 2026-03-01 or 2026-03-15T12:00Z", 2
        ) from None


def parse_reference(text: str) -> Reference:
    """`as-booked`, `current`, or `as-of T` (also `as-of=T`, `as-of:T`)."""
    text = text.strip()
    for mode in (ReferenceMode.AS_BOOKED, ReferenceMode.CURRENT):
        if text == mode.value:
            return Reference(mode)
    if text.startswith("as-of") and text[5:6] in (" ", "=", ":"):
        return Reference(ReferenceMode.AS_OF, parse_moment(text[6:], "--reference as-of"))
    raise fail(f"--reference {text!r}: give as-booked, current or 'as-of 2026-03-15T00:00Z'", 2)


class ReplayRun:
    """A replay's verdicts as they come: totals, the changed ones, the CSV rows."""

    def __init__(self, partner: str | None) -> None:
        self.partner = partner
        self.totals = Totals()
        self.changed: list[Verdict] = []

    def take(self, verdicts: Iterator[Verdict]) -> Iterator[Verdict]:
        for verdict in verdicts:
            if self.partner is not None and not verdict.concerns(self.partner):
                continue
            self.totals.add(verdict)
            if verdict.change is not Change.SAME:
                self.changed.append(verdict)
            yield verdict


def shadow(
    settings: Settings,
    selected: ReplayRange,
    reference: Reference,
    run: ReplayRun,
    report: Path | None,
    quiet: bool,
) -> None:
    """Replay the range into `run`, writing every row to `report` when given."""
    keys = record_proof_keys(load_hub_keyring(settings))
    limits = PlausibilityLimits(energy_kwh_max=settings.energy_kwh_max)
    with connect(role_url(settings, DbRole.READER)) as conn, tuned_gc():
        total = selected.count(conn)
        conn.rollback()
        with Progress(console=console, transient=True, disable=quiet) as progress:
            task = progress.add_task(f"replaying {total:,} archived records", total=total)
            verdicts = run.take(
                run_replay(
                    conn,
                    selected,
                    reference,
                    keys,
                    limits,
                    lambda done: progress.advance(task, done),
                )
            )
            if report is None:
                for _ in verdicts:
                    pass
                return
            with report.open("w", newline="", encoding="utf-8") as out:
                write_csv(verdicts, out)


def apply_run(
    settings: Settings,
    selected: ReplayRange,
    reference: Reference,
    run: ReplayRun,
    report: Path | None,
    quiet: bool,
    at: datetime | None = None,
) -> AppliedRun:
    """The replay and its corrections under the apply lock, booked in one transaction as the
    clearing writer: the replay reads the bookings every earlier apply left in force.
    `at`: the corrections' value time (default now: the open period)."""
    with connect(role_url(settings, DbRole.WORKER)) as writer:
        replay_apply.lock(writer)
        shadow(settings, selected, reference, run, report, quiet)
        params = selected.params
        header = replay_apply.RunHeader(
            params["topic"],
            params["start"],
            params["end"],
            run.partner,
            reference,
            f"cli:{getpass.getuser()}",
            sum(run.totals.changes.values()),
            {change.value: run.totals.changes[change.value] for change in Change},
        )
        moment = at or datetime.now(UTC)
        applied = replay_apply.apply(writer, header, corrections(run.changed), moment)
        writer.commit()
    return applied


def replay(
    start: Annotated[str, typer.Option("--from", help="first broker time (inclusive)")],
    end: Annotated[str, typer.Option("--to", help="last broker time (exclusive)")],
    partner: Annotated[
        str | None, typer.Option("--partner", help="only CDRs of this CPO or eMSP (CC*PID)")
    ] = None,
    reference: Annotated[
        str, typer.Option("--reference", help="as-booked, current, or 'as-of T'")
    ] = "as-booked",
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="write every record's verdict as CSV")
    ] = None,
    apply_changes: Annotated[
        bool,
        typer.Option(
            "--apply", help="book the differences (amount_changed, now_booked) in open periods"
        ),
    ] = False,
) -> None:
    """Re-price the archived records of a time range with the chosen reference data and
    compare each with what the hub booked: same, amount_changed (per component, with the
    cause), now_rejected, now_booked; totals per partner and currency. Writes nothing unless
    --apply: then each amount_changed CDR gets an ADJUSTMENT reversal and charge, each
    now_booked CDR its booking, as one run (`roamclear replays`)."""
    t1, t2 = parse_moment(start, "--from"), parse_moment(end, "--to")
    if t1 >= t2:
        raise fail(f"--from {start} is not before --to {end}", 2)
    chosen = parse_reference(reference)
    who = None if partner is None else str(party_option(partner, "--partner"))
    settings = live_settings()
    selected = ReplayRange(topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED), t1, t2)
    run = ReplayRun(who)
    applied = None
    if apply_changes:
        applied = apply_run(settings, selected, chosen, run, report, json_output)
    else:
        shadow(settings, selected, chosen, run, report, json_output)
    summary: dict[str, Any] = {
        "from": t1.isoformat(),
        "to": t2.isoformat(),
        "reference": str(chosen),
        "partner": who,
        "records": sum(run.totals.changes.values()),
        "changes": {change.value: run.totals.changes[change.value] for change in Change},
    }
    if applied is not None:
        summary["applied"] = {
            "run_id": applied.run_id,
            "booked": applied.booked,
            "already_booked": applied.already,
        }
    if json_output:
        print_json(
            summary
            | {"totals": run.totals.as_json(), "changed": [verdict_json(v) for v in run.changed]}
        )
        return
    show(summary, run, report)


def show(summary: dict[str, Any], run: ReplayRun, report: Path | None) -> None:
    counts = ", ".join(f"{n} {change}" for change, n in summary["changes"].items() if n)
    console.print(
        f"[bold]replay[/] {summary['from']} → {summary['to']}, reference {summary['reference']}"
        f": {summary['records']} records ({counts or 'none'})"
    )
    if run.changed:
        table = Table(title="changed records")
        for column in ("CDR", "change", "cause / reason", "component"):
            table.add_column(column)
        for column in ("booked", "now", "Δ"):
            table.add_column(column, justify="right")
        for verdict in run.changed[:TABLE_ROWS_MAX]:
            why = " ".join(c.value for c in verdict.causes) or (verdict.reason or "")
            if not verdict.deltas:
                # a now_booked CDR: what it would book (incl. VAT)
                now = effect(verdict).get("incl_vat")
                cells = ("", "", "") if now is None else ("incl_vat", "-", str(now))
                table.add_row(verdict.cdr_key or "-", verdict.change.value, why, *cells, "")
            for delta in verdict.deltas:
                table.add_row(
                    verdict.cdr_key or "-",
                    verdict.change.value,
                    why,
                    delta.component,
                    str(delta.booked),
                    str(delta.replayed),
                    f"{delta.delta:+}",
                )
        console.print(table)
        if len(run.changed) > TABLE_ROWS_MAX:
            console.print(f"… {len(run.changed) - TABLE_ROWS_MAX} more: see --json or --report")
    totals = Table(title="totals per partner and currency (effect: what --apply would book)")
    for column in ("partner", "role", "currency", *Change, "Δ excl. VAT", "Δ incl. VAT", "Δ fee"):
        totals.add_column(str(column))
    for line in run.totals.as_json():
        totals.add_row(
            line["partner"],
            line["role"],
            line["currency"],
            *(str(n) for n in line["changes"].values()),
            *line["effect"].values(),
        )
    console.print(totals)
    if report is not None:
        console.print(f"every record's verdict: {report}")
    if "applied" in summary:
        applied = summary["applied"]
        console.print(
            f"applied as run {applied['run_id']}: {applied['booked']} CDR(s) corrected, "
            f"{applied['already_booked']} held already (booked nothing)"
        )


replays = typer.Typer(help="Applied replay runs and what each booked.", no_args_is_help=True)


@replays.command("list")
def list_runs(
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="newest runs shown")] = 50,
) -> None:
    """Applied replay runs, newest first."""
    with connect(role_url(live_settings(), DbRole.READER)) as conn:
        rows = replay_apply.runs(conn, limit)
    if json_output:
        print_json(rows)
        return
    table = Table(title="applied replay runs")
    for column in ("run", "applied at", "range", "reference", "partner", "records", "booked"):
        table.add_column(column)
    for row in rows:
        reference = row["reference"] + (
            "" if row["reference_as_of"] is None else f" {row['reference_as_of']:%Y-%m-%dT%H:%MZ}"
        )
        table.add_row(
            str(row["run_id"]),
            f"{row['applied_at']:%Y-%m-%d %H:%M:%S}",
            f"{row['range_from']:%Y-%m-%d %H:%M} → {row['range_to']:%Y-%m-%d %H:%M}",
            reference,
            row["partner"] or "all",
            str(row["records"]),
            str(row["corrections"]),
        )
    console.print(table)


@replays.command("show")
def show_run(
    run_id: Annotated[int, typer.Argument(help="the run id (`replays list`)")],
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """One applied run: what it replayed, and per CDR what it booked."""
    with connect(role_url(live_settings(), DbRole.READER)) as conn:
        try:
            run, booked = replay_apply.run_detail(conn, run_id)
        except RunNotFound as exc:
            raise fail(str(exc)) from None
    if json_output:
        print_json({"run": run, "corrections": booked})
        return
    console.print(
        f"[bold]replay run {run['run_id']}[/] by {run['recorded_by']} at {run['applied_at']}: "
        f"{run['records']} records, {run['corrections']} CDR(s) corrected; changes "
        + ", ".join(f"{n} {change}" for change, n in run["changes"].items() if n)
    )
    table = Table()
    for column in ("CDR", "change", "corrects", "reversal", "charge", "was incl.", "now incl."):
        table.add_column(column)
    for row in booked:
        table.add_row(
            row["cdr_key"], row["change"], str(row["corrects"] or "-"),
            str(row["reversal_id"] or "-"), str(row["charge_id"]),
            str(row["was_incl_vat"] if row["was_incl_vat"] is not None else "-"),
            f"{row['amount_incl_vat']} {row['currency']}",
        )  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
    app.add_typer(replays, name="replays")
