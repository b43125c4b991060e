"""`roamclear partners invite`: the start of an OCPI connection the partner initiates.

    roamclear partners invite --id NL*TNM [--raw-token] [--json]

prints a registration token (token A) and the hub's versions URL, to hand to the partner out
of band. With them the partner reads the hub's versions and POSTs its credentials; the
handshake then issues the token it uses from there on, and token A stops working.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from pipeline.ocpi.modules import BASE_PATH
from schemas.hub.party import PartyRef
from settlement.store import ocpi_tokens
from settlement.store.db import connect


def invite(
    party: Annotated[str, typer.Option("--id", help="the partner, e.g. NL*TNM")],
    raw_token: Annotated[
        bool, typer.Option("--raw-token", help="also accept its tokens unencoded (OCPI 2.1.1)")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Issue a registration token (A) for a partner and print it with the versions URL."""
    try:
        partner = PartyRef.parse(party)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    settings = live_settings()
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        try:
            token = ocpi_tokens.issue(
                conn, partner, ocpi_tokens.TokenKind.A, raw_token, "partners invite"
            )
        except ocpi_tokens.TokenRefused as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    versions_url = f"{settings.public_url.rstrip('/')}{BASE_PATH}/versions"
    if json_output:
        print_json({"partner": str(partner), "token": token, "versions_url": versions_url})
        return
    console.print(f"registration token (A) for {partner}, shown once: {token}", highlight=False)
    console.print(f"versions URL: {versions_url}", highlight=False)
    console.print(
        "the partner POSTs its credentials there with this token; the handshake issues the "
        "token it uses afterwards, and this one stops working"
    )
