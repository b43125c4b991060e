"""The demo's ops act (`roamclear demo`, step 5): what an ops engineer does when a partner
says a figure is wrong, on the books the demo just cleared and settled.

1. `roamclear trace` of one booked CDR, in short: its records, tariff version, declared vs
   computed totals, postings and the statement each landed in, deliveries.
2. Its eMSP disputes it; the hub accepts by an adjustment (an ADJUSTMENT transaction in the
   open period; the closed statement is not touched, its line is marked).
3. The sample CPO corrects its tariff from a moment inside the sample CDRs' days; the hub
   replays them against it and applies the corrections, then applies again: nothing more is
   booked (pipeline/demo_replay.py).
4. The books afterwards: invariant 2 still holds, every balance still sums to zero, every
   booking is explained and every closed statement verifies.

A few queries, small transactions, a replay of the three sample CDRs and the statements'
verification: seconds on the demo's books.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Final

import psycopg
from rich.console import Console
from rich.table import Table

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.demo_replay import step_replay
from pipeline.hubkeys import load_seal_keys
from pipeline.kafka.client import records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.hub.party import CdrKey
from settlement.cdr_trace import CdrTrace
from settlement.disputes import HUB, Action, Dispute, mark_text
from settlement.store import books
from settlement.store import disputes as dispute_store
from settlement.store.db import Row, connect
from settlement.store.statements import iter_statements, load_statement, verify
from settlement.store.trace import read_trace

RECORDED_BY: Final = "demo:ops"
CLAIM_MAX: Final = Decimal("1.0000")  # the eMSP claims at most this much (or the CDR's gross)

# the first charge booked between two parties and not credited (the demo's CDRs are all
# cleared and their ended periods closed by now)
_A_SETTLED_CHARGE: Final = """
SELECT t.cdr_key FROM ledger_transaction t
 WHERE t.kind = 'CHARGE' AND t.cpo <> t.emsp AND t.amount_incl_vat > 0
   AND NOT EXISTS (SELECT 1 FROM ledger_transaction r WHERE r.reverses = t.transaction_id)
 ORDER BY t.booked_at, t.cdr_key LIMIT 1
"""


def step_ops(settings: Settings, samples: tuple[datetime, datetime], console: Console) -> None:
    """Trace one CDR, settle a dispute of it by a hub adjustment, replay a tariff correction
    over the broker times of the sample CDRs (`samples`), check the books."""
    with connect(role_url(settings, DbRole.READER)) as conn:
        row = conn.execute(_A_SETTLED_CHARGE).fetchone()
        if row is None:
            raise RuntimeError("no booked charge between two parties to trace and dispute")
        traced = read_trace(conn, CdrKey.parse(row["cdr_key"]))
    show_trace(traced, console)
    dispute = dispute_and_adjust(settings, traced, console)
    with connect(role_url(settings, DbRole.READER)) as conn:
        after = read_trace(conn, CdrKey.parse(traced.cdr_key))
        show_marks(conn, after, dispute, console)
    step_replay(settings, samples, console)
    check_books_after(settings, console)


def show_trace(traced: CdrTrace, console: Console) -> None:
    """`roamclear trace KEY` in a few lines (the command gives the whole story)."""
    console.print(f"[bold]roamclear trace '{traced.cdr_key}'[/] (in short)", highlight=False)
    table = Table("what", "as traced", title=f"CDR {traced.cdr_key}", title_justify="left")
    records = ", ".join(
        f"{r.topic}[{r.partition}]@{r.offset} {r.outcome.outcome}" for r in traced.records
    )
    table.add_row("records", records or "-")
    if traced.pricing is not None:
        pricing = traced.pricing
        totals = pricing.totals
        table.add_row(
            "tariff", f"{pricing.tariff.tariff_key} (hash {pricing.tariff.content_hash[:12]}…)"
        )
        table.add_row(
            "agreement",
            f"{pricing.agreement.agreement_id} v{pricing.agreement.version}, "
            f"zone {pricing.location.time_zone or '-'}",
        )
        table.add_row(
            "declared / computed",
            f"{totals.declared_incl_vat} / {totals.computed_incl_vat} incl. VAT "
            f"(re-rated per period: matches booking {pricing.breakdown.matches_booking})",
        )
    for transaction in traced.transactions:
        landed = sorted(
            {f"statement {p.statement.statement_id}" for p in transaction.postings if p.statement}
        )
        table.add_row(
            transaction.kind,
            f"{transaction.amount_incl_vat} {transaction.currency}, "
            f"{len(transaction.postings)} postings, on {', '.join(landed) or 'no statement yet'}",
        )
    deliveries = ", ".join(f"{d.emsp} {d.state}" for d in traced.deliveries)
    table.add_row("deliveries", deliveries or "-")
    console.print(table)


def dispute_and_adjust(settings: Settings, traced: CdrTrace, console: Console) -> Dispute:
    """The eMSP disputes the CDR; the hub accepts by an adjustment of what it claims."""
    assert traced.emsp is not None and traced.transactions
    gross = traced.transactions[0].amount_incl_vat
    claim = str(min(CLAIM_MAX, gross))
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        opened = dispute_store.open_dispute(
            conn, traced.cdr_key, traced.emsp, "AMOUNT_INCORRECT", claim,
            "idle fee charged although the car left on time", RECORDED_BY,
        )  # fmt: skip
        accepted = dispute_store.move(
            conn, opened.dispute_id, Action.ACCEPT, HUB, "idle fee refunded", RECORDED_BY,
            None, claim,
        )  # fmt: skip
        conn.commit()
    table = Table("#", "from → to", "by", "why", title=f"dispute {accepted.dispute_id}")
    for t in accepted.history:
        edge = f"{t.from_state.value if t.from_state else '-'} → {t.to_state.value}"
        table.add_row(str(t.seq), edge, t.actor, t.note)
    console.print(
        f"{traced.emsp} disputes {traced.cdr_key} (claims {claim} {accepted.currency}); the hub "
        f"accepts by an adjustment: ADJUSTMENT {accepted.adjustment_id} in the open period",
        highlight=False,
    )
    console.print(table)
    return accepted


def show_marks(
    conn: psycopg.Connection[Row], after: CdrTrace, dispute: Dispute, console: Console
) -> None:
    """The dispute in the CDR's trace, and its mark on the closed statement of the CDR."""
    (traced,) = [d for d in after.disputes if d.dispute.dispute_id == dispute.dispute_id]
    postings = 0 if traced.adjustment is None else len(traced.adjustment.postings)
    console.print(
        f"the trace now shows dispute {dispute.dispute_id} ({traced.dispute.state.value}, "
        f"{len(traced.dispute.history)} transitions) and its adjustment ({postings} postings)",
        highlight=False,
    )
    statements = sorted(
        {p.statement.statement_id for t in after.transactions for p in t.postings if p.statement}
    )
    for statement_id in statements:
        header = load_statement(conn, statement_id).header
        for mark in dispute_store.statement_marks(conn, statement_id):
            if mark.dispute_id == dispute.dispute_id:
                text = mark_text(mark, header.period_kind, header.settlement_tz)
                console.print(
                    f"closed statement {statement_id} ({header.partner}) is unchanged and "
                    f"marks its line: {text}",
                    highlight=False,
                )


def check_books_after(settings: Settings, console: Console) -> None:
    """Invariant 2, the balances and the closed statements after the act: adjustments and
    replay corrections are balanced transactions of their own, outside cdr.submitted's
    counts, booked in the open period (a closed statement still verifies)."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    in_topic = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
    with connect(role_url(settings, DbRole.READER)) as conn:
        counts = books.counts(conn, topic, in_topic)
        total = sum(b["balance"] for b in books.balances(conn))
        unexplained = books.unexplained(conn)
        keys = load_seal_keys(settings)
        statements = [s.batch_id for s in iter_statements(conn, keys)]
        differ = [n for n in statements if not verify(conn, n, keys).matches]
    decided = counts["ledgered"] + counts["rejected"] + counts["duplicates"]
    holds = counts["pending"] == 0 and decided == counts["submitted"]
    whole = not any(unexplained.values())
    console.print(
        f"after the ops act: submitted {counts['submitted']:,} = ledgered "
        f"{counts['ledgered']:,} + rejected {counts['rejected']:,} + duplicates "
        f"{counts['duplicates']:,} ({'[green]holds[/]' if holds else '[red]BROKEN[/]'}); "
        f"sum of all balances {total}; every booking explained: "
        + ("[green]yes[/]" if whole else f"[red]no[/] {unexplained}")
        + f"; closed statements that verify: {len(statements) - len(differ)} of "
        f"{len(statements)}"
    )
    if not (holds and whole and total == 0 and not differ):
        raise RuntimeError("the books do not add up after the ops act")
