"""`roamclear partners|tariffs|locations|agreements`: the hub's reference data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline import reference
from pipeline.cli.common import live_settings, read_objects
from pipeline.cli.console import console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from schemas.hub.party import PartnerRole, PartyRef
from schemas.validation import parse_agreement, parse_location, parse_tariff
from settlement.store import reference_store
from settlement.store.db import connect

partners = typer.Typer(help="Register and list partners (CPOs and eMSPs).")
tariffs = typer.Typer(help="Publish CPO tariffs (every version is kept).")
locations = typer.Typer(help="Publish OCPI locations (for their time zone).")
agreements = typer.Typer(help="Set roaming agreements (every version is kept).")

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a JSON file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


@partners.command("add")
def partners_add(
    party: Annotated[str, typer.Option("--id", help="party reference, e.g. NL*TNM")],
    role: Annotated[str, typer.Option("--role", help="CPO, EMSP or both")],
    name: Annotated[str, typer.Option("--name", help="display name")],
) -> None:
    """Register a partner (or change its role and name)."""
    ref = PartyRef.parse(party)
    try:
        partner_role = PartnerRole(role.upper())
    except ValueError:
        raise typer.BadParameter("must be CPO, EMSP or both", param_hint="--role") from None
    reference.add_partners(live_settings(), [(ref, partner_role, name)])
    console.print(f"partner {ref} ({partner_role}) registered")


@partners.command("list")
def partners_list(json_output: JsonOpt = False) -> None:
    """List registered partners."""
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.READER)) as conn:
        rows = reference_store.list_partners(conn)
    if json_output:
        print_json([{k: row[k] for k in ("party_ref", "role", "name")} for row in rows])
        return
    table = Table("partner", "role", "name", "registered")
    for row in rows:
        table.add_row(row["party_ref"], row["role"], row["name"], f"{row['created_at']:%Y-%m-%d}")
    console.print(table)


@tariffs.command("publish")
def tariffs_publish(file: FileArg) -> None:
    """Publish one tariff or a JSON list of tariffs (OCPI 2.2.1)."""
    parsed = read_objects(file, parse_tariff)
    try:
        added = reference.publish_tariffs(live_settings(), parsed)
    except reference_store.ReferenceConflict as exc:
        raise fail(f"nothing published: {exc}") from exc
    console.print(f"published {len(parsed)} tariff(s), {added} new version(s)")


@locations.command("publish")
def locations_publish(file: FileArg) -> None:
    """Publish one location or a JSON list of locations (OCPI 2.2.1)."""
    parsed = read_objects(file, parse_location)
    added = reference.publish_locations(live_settings(), parsed)
    console.print(f"published {len(parsed)} location(s), {added} new version(s)")


@agreements.command("set")
def agreements_set(file: FileArg) -> None:
    """Set one agreement version or a JSON list of them."""
    parsed = read_objects(file, parse_agreement)
    added = reference.publish_agreements(live_settings(), parsed)
    console.print(f"set {len(parsed)} agreement version(s), {added} new")
