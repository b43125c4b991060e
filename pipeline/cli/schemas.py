"""`roamclear schemas`: write and check the JSON Schemas generated from the models."""

from __future__ import annotations

from pathlib import Path

import typer

from schemas.export import DEFAULT_DIRECTORY, export_json_schemas, stale_json_schemas

app = typer.Typer(
    help="JSON Schemas of the OCPI objects, hub objects and event envelopes (schemas/json).",
    no_args_is_help=True,
)


@app.command("export")
def export(
    directory: Path = typer.Option(
        DEFAULT_DIRECTORY, "--dir", help="Directory to write the *.schema.json files into."
    ),
) -> None:
    """Regenerate every schema file from the models (removes stale ones)."""
    written = export_json_schemas(directory)
    typer.echo(f"wrote {len(written)} schema files to {directory}")


@app.command("check")
def check(
    directory: Path = typer.Option(
        DEFAULT_DIRECTORY, "--dir", help="Directory holding the *.schema.json files."
    ),
) -> None:
    """Exit 1 when a schema file differs from the models, is missing or is extra."""
    stale = stale_json_schemas(directory)
    if stale:
        for name in stale:
            typer.echo(f"stale: {name}", err=True)
        typer.echo("run `roamclear schemas export` and commit schemas/json", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"schemas up to date in {directory}")
