"""`roamclear counts`, `roamclear ledger balance|show` and `roamclear books diff`: checking
the books."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Any

import psycopg
import typer
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, fail, print_json
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.kafka.client import records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.hub.party import PartyRef
from settlement.books_diff import BooksDiff, diff_books
from settlement.store import books, ocpi_pushes
from settlement.store.books_read import Scope, read_books
from settlement.store.db import connect
from settlement.store.urls import redacted

ledger = typer.Typer(help="Balances and transactions of the double-entry ledger.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


def current_counts(settings: Settings) -> dict[str, int]:
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    in_topic = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
    with connect(role_url(settings, DbRole.READER)) as conn:
        return {**books.counts(conn, topic, in_topic), **books.ingest_counts(conn)}


def counts(json_output: JsonOpt = False) -> None:
    """Invariant 2: submitted = ledgered + rejected + duplicates (+ pending), and every booking
    explained by an archived record (exit 1 when one is not); CDRs received over OCPI HTTP:
    received_http = accepted_http + duplicates_http + rejected_at_ingest; sessions, tariffs
    and locations pushed over OCPI HTTP (pushes_http): received = accepted + refused."""
    settings = live_settings()
    result = current_counts(settings)
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.READER)) as conn:
        unexplained = books.unexplained(conn)
        pushes = ocpi_pushes.counts(conn)
    if json_output:
        print_json({**result, "pushes_http": pushes, "unexplained": unexplained})
        if any(unexplained.values()):
            raise typer.Exit(1)
        return
    names = ("submitted", "ledgered", "rejected", "duplicates", "pending")
    table = Table(*names)
    table.add_row(*(f"{result[name]:,}" for name in names))
    console.print(table)
    decided = result["ledgered"] + result["rejected"] + result["duplicates"]
    holds = decided + result["pending"] == result["submitted"]
    console.print(
        f"invariant 2 {'[green]holds[/]' if holds else '[red]BROKEN[/]'}: "
        f"{result['submitted']:,} = {result['ledgered']:,} + {result['rejected']:,} + "
        f"{result['duplicates']:,} + {result['pending']:,} pending"
    )
    console.print(
        f"over OCPI HTTP: {result['received_http']:,} received = "
        f"{result['accepted_http']:,} accepted + {result['duplicates_http']:,} duplicates + "
        f"{result['rejected_at_ingest']:,} rejected at ingest"
        + (
            f"; [yellow]{result['unpublished_http']:,} accepted but not on the topic[/] "
            "(their partners' retries publish them)"
            if result["unpublished_http"]
            else ""
        )
    )
    console.print(
        "pushed over OCPI HTTP: "
        + "; ".join(
            f"{module} {c['received']:,} received = {c['accepted']:,} accepted + "
            f"{c['refused']:,} refused"
            for module, c in pushes.items()
        )
        + " (refusals: `roamclear rejected pushes`)"
    )
    for name, count in unexplained.items():
        if count:
            console.print(f"[red]BOOKS NOT EXPLAINED[/]: {count:,} {name.replace('_', ' ')}")
    if any(unexplained.values()):
        raise typer.Exit(1)
    console.print("every booking is explained by an archived, ledgered record")


def _balance_json(row: dict[str, Any]) -> dict[str, Any]:
    account: str = row["account"]
    kind, _, name = account.partition(":")
    return {
        "partner" if kind == "partner" else "account": name if kind == "partner" else account,
        "currency": row["currency"],
        "balance": str(row["balance"]),
        "postings": row["postings"],
    }


@ledger.command("balance")
def balance(
    partner: Annotated[str | None, typer.Option(help="party reference, e.g. NL*TNM")] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 code")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Balance per account (credits - debits: positive = the hub owes the partner)."""
    settings = live_settings()
    assert settings.database_url is not None
    account = None if partner is None else f"partner:{PartyRef.parse(partner)}"
    with connect(role_url(settings, DbRole.READER)) as conn:
        rows = books.balances(conn, account, currency)
    if partner is not None and not rows:
        rows = [
            {
                "account": account,
                "currency": currency or "EUR",
                "balance": Decimal("0"),
                "postings": 0,
            }
        ]
    if json_output:
        out = [_balance_json(row) for row in rows]
        print_json(out[0] if partner is not None and len(out) == 1 else out)
        return
    table = Table("account", "currency", "balance", "postings")
    for row in rows:
        table.add_row(row["account"], row["currency"], str(row["balance"]), f"{row['postings']:,}")
    console.print(table)


@ledger.command("show")
def show(
    cdr: Annotated[str, typer.Option("--cdr", help="canonical CDR key, e.g. 'NL*TNM*CDR1'")],
    json_output: JsonOpt = False,
) -> None:
    """The transaction(s) and postings of one CDR (its charge and any reversal)."""
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.READER)) as conn:
        transactions = books.transactions_of_cdr(conn, cdr)
    if json_output:
        print_json(transactions)
        return
    if not transactions:
        console.print(f"no transaction for {cdr}")
        raise typer.Exit(1)
    for transaction in transactions:
        console.print(
            f"[bold]{transaction['kind']}[/] {transaction['transaction_id']} "
            f"cdr {transaction['cdr_key']} {transaction['cpo']} → {transaction['emsp']} "
            f"booked {transaction['booked_at']:%Y-%m-%d %H:%M:%S}"
        )
        table = Table("account", "side", "amount", "currency")
        for posting in transaction["postings"]:
            table.add_row(
                posting["account"], posting["side"], str(posting["amount"]), posting["currency"]
            )
        console.print(table)


books_app = typer.Typer(help="Comparing books: a rebuild against the live database.")
DIFFERENCES_SHOWN_MAX = 50  # rows of the table for people (--json has every one kept)


@books_app.command("diff")
def diff(
    database_url_a: Annotated[str, typer.Argument(help="the first database, e.g. the live one")],
    database_url_b: Annotated[str, typer.Argument(help="the second, e.g. a rebuild")],
    scope: Annotated[
        Scope,
        typer.Option(
            help="clearing: CHARGE and REVERSAL only (what a rebuild reproduces); all: "
            "settlement rounding and dispute adjustments too"
        ),
    ] = Scope.ALL,
    json_output: JsonOpt = False,
) -> None:
    """Compare two databases' ledgers (transactions, postings, balances per account and
    currency), rejections and outcomes; surrogate ids and booking times are not compared.
    Exit 1 when anything differs."""
    try:
        with connect(database_url_a) as a, connect(database_url_b) as b:
            found = diff_books(read_books(a, scope), read_books(b, scope))
    except psycopg.OperationalError as exc:
        raise fail(f"cannot read the books: {str(exc).strip()}") from None
    except psycopg.errors.UndefinedTable as exc:
        raise fail(f"not a migrated roamclear database: {str(exc).strip()}") from None
    if json_output:
        names = {"a": redacted(database_url_a), "b": redacted(database_url_b)}
        print_json({**names, **found.as_json()})
    else:
        _print_diff(found, redacted(database_url_a), redacted(database_url_b))
    if not found.identical:
        raise typer.Exit(1)


def _print_diff(found: BooksDiff, a: str, b: str) -> None:
    console.print(f"A: {a}\nB: {b}")
    table = Table("section", "rows A", "rows B", "differences")
    for name, count in found.counts.items():
        mark = "[green]0[/]" if not count else f"[red]{count:,}[/]"
        table.add_row(name, f"{found.rows_a[name]:,}", f"{found.rows_b[name]:,}", mark)
    console.print(table)
    if found.identical:
        console.print("[green]identical books[/]")
        return
    shown = found.differences[:DIFFERENCES_SHOWN_MAX]
    details = Table("section", "key", "field", "A", "B")
    for d in shown:
        field = d.field or "(row)"
        details.add_row(d.section, d.key, field, d.a or "-", d.b or "-")
    console.print(details)
    total = sum(found.counts.values())
    if total > len(shown):
        console.print(f"{total - len(shown):,} more differences (--json lists up to 1,000)")
