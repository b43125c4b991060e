"""`roamclear migrate`: bring a configured PostgreSQL's schema up to date, before the services.

    roamclear migrate [--check] [--json]

Run with the administrator's `DATABASE_URL` (a superuser or a member of `roamclear_owner`
with CREATEROLE: docs/security.md, "On a managed PostgreSQL"); the services then connect as
their own roles. A deployment runs it as a one-shot job before anything else starts
(deploy/README.md); the embedded stack migrates in `roamclear dev up` instead.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from pipeline.cli.console import console, fail, print_json
from pipeline.config import Settings
from settlement.store.migrate import apply_migrations, pending_migrations
from settlement.store.urls import redacted


def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="apply nothing; exit 1 if migrations are pending")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Apply the pending schema migrations and re-grant every role's privileges (idempotent:
    yoyo locks, so two at once are safe)."""
    database_url = Settings.from_env().database_url
    if database_url is None:
        raise fail("DATABASE_URL is not set (the embedded stack migrates in `roamclear dev up`)", 2)
    try:
        ids = pending_migrations(database_url) if check else apply_migrations(database_url)
    except psycopg.OperationalError as exc:
        raise fail(f"cannot reach PostgreSQL at {redacted(database_url)}: {exc}") from None
    verb = "pending" if check else "applied"
    if json_output:
        print_json({verb: ids})
    else:
        console.print(f"{len(ids)} migration(s) {verb}: {', '.join(ids) or '-'}")
    if check and ids:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.command("migrate")(migrate)
