"""The `roamclear` command: one entry point, a subcommand per concern."""

from __future__ import annotations

import typer

from pipeline.cli import bench, demo, dev, rate, schemas, topics

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
app.add_typer(bench.app, name="bench")
rate.register(app)
demo.register(app)


def main() -> None:
    app()
