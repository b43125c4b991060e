"""The `roamclear` command: one entry point, a subcommand per concern."""

from __future__ import annotations

import typer

from pipeline.api import cli as api_cli
from pipeline.cli import (
    bench,
    books,
    config_show,
    deliveries,
    demo,
    dev,
    disputes,
    ingest,
    keys,
    migrate,
    ocpi,
    rate,
    rebuild,
    reconcile,
    reference,
    rejected,
    replay,
    schemas,
    sessions,
    settle,
    simulate,
    statements,
    status,
    topics,
    trace,
    worker,
)

app = typer.Typer(
    name="roamclear",
    help="Clearing and settlement back office of an EV-charging roaming hub.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(topics.app, name="topics")
app.add_typer(schemas.app, name="schemas")
app.add_typer(reference.partners, name="partners")
reference.partners.add_typer(keys.keys, name="keys")
reference.partners.command("invite")(ocpi.invite)
reference.partners.command("connect")(ocpi.connect)
reference.partners.command("disconnect")(ocpi.disconnect)
reference.partners.command("connections")(ocpi.connections)
app.add_typer(keys.config, name="config")
config_show.register(keys.config)
app.add_typer(reference.tariffs, name="tariffs")
app.add_typer(reference.locations, name="locations")
app.add_typer(reference.agreements, name="agreements")
app.add_typer(books.ledger, name="ledger")
app.add_typer(books.books_app, name="books")
app.add_typer(rejected.app, name="rejected")
app.add_typer(sessions.app, name="sessions")
app.add_typer(ingest.app, name="ingest")
app.add_typer(settle.app, name="settle")
app.add_typer(statements.app, name="statements")
app.add_typer(bench.app, name="bench")
app.add_typer(disputes.app, name="disputes")
app.command("counts")(books.counts)
worker.register(app)
deliveries.register(app)
simulate.register_command(app)
api_cli.register(app)
rate.register(app)
demo.register(app)
trace.register(app)
migrate.register(app)
status.register(app)
rebuild.register(app)
reconcile.register(app)
replay.register(app)


def main() -> None:
    app()
