"""`roamclear ingest cdrs FILE`: the file loader, for partners that deliver CDR files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import live_settings, read_objects
from pipeline.cli.console import console
from pipeline.publish import publish_cdrs
from schemas.hub.party import PartyRef
from schemas.ocpi.v211 import parse_cdr_any

app = typer.Typer(help="Load partner files into the hub.")


@app.command("cdrs")
def cdrs(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="one CDR or a list")],
    owner: Annotated[
        str | None, typer.Option(help="the CPO, for OCPI 2.1.1 CDRs (which do not name it)")
    ] = None,
) -> None:
    """Submit CDRs (OCPI 2.2.1, or 2.1.1 converted) to roamclear.cdr.submitted, each in
    its CPO's name with the hub's proof: whoever runs this vouches for the file's origin."""
    party = None if owner is None else PartyRef.parse(owner)
    parsed = read_objects(file, lambda raw: parse_cdr_any(raw, owner=party))
    sent = asyncio.run(publish_cdrs(live_settings(), parsed))
    console.print(f"submitted {sent} CDR(s)")
