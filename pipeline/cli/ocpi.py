"""`roamclear partners invite|connect|connections`: OCPI connections with partners.

    roamclear partners invite --id NL*TNM [--raw-token] [--json]

prints a registration token (token A) and the hub's versions URL, to hand to the partner out
of band. With them the partner reads the hub's versions and POSTs its credentials; the
handshake then issues the token it uses from there on, and token A stops working.

    roamclear partners connect --id NL*TNM --versions-url URL --token A [--raw-token] [--json]

is the other direction (how Gireve onboards): the partner gave the hub its versions URL and
a token A, and the hub runs the handshake (pipeline.ocpi.connect). The hub's API must be up
at ROAMCLEAR_PUBLIC_URL, since the partner calls it back during the handshake.

    roamclear partners disconnect --id NL*TNM --reason "lost its token"

ends a connection from the hub's side: the partner's token stops working at once and it can
be invited again (the partner's platform is not called: tell the partner).

    roamclear partners connections [--json]

lists each partner's connection: state, who started it, version, endpoints, since when, and
the request IDs that made it; never a token.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import live_settings, party_option
from pipeline.cli.console import console, fail, print_json
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_hub_keyring
from pipeline.ocpi.connect import Connect, ConnectFailed, connect_partner
from pipeline.ocpi.paths import public_versions_url
from pipeline.ocpi.registration import HubIdentity
from settlement.store import ocpi_connections, ocpi_tokens, reference_store
from settlement.store.db import connect as connect_db


def invite(
    party: Annotated[str, typer.Option("--id", help="the partner, e.g. NL*TNM")],
    raw_token: Annotated[
        bool, typer.Option("--raw-token", help="also accept its tokens unencoded (OCPI 2.1.1)")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Issue a registration token (A) for a partner and print it with the versions URL."""
    partner = party_option(party)
    settings = live_settings()
    with connect_db(role_url(settings, DbRole.OPERATOR)) as conn:
        try:
            token = ocpi_tokens.issue(
                conn, partner, ocpi_tokens.TokenKind.A, raw_token, "partners invite"
            )
        except ocpi_tokens.TokenRefused as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    versions_url = public_versions_url(settings.public_url)
    if json_output:
        print_json({"partner": str(partner), "token": token, "versions_url": versions_url})
        return
    console.print(f"registration token (A) for {partner}, shown once: {token}", highlight=False)
    console.print(f"versions URL: {versions_url}", highlight=False)
    console.print(
        "the partner POSTs its credentials there with this token; the handshake issues the "
        "token it uses afterwards, and this one stops working"
    )


def connect(
    party: Annotated[str, typer.Option("--id", help="the partner, e.g. NL*TNM")],
    versions_url: Annotated[
        str, typer.Option("--versions-url", help="the partner's OCPI versions URL")
    ],
    token: Annotated[
        str, typer.Option("--token", help="the registration token (A) the partner gave the hub")
    ],
    raw_token: Annotated[
        bool, typer.Option("--raw-token", help="the partner reads tokens unencoded (OCPI 2.1.1)")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Connect to a partner from the hub's side (the partner gave a versions URL and token A)."""
    partner = party_option(party)
    settings = live_settings()
    try:
        identity = HubIdentity.from_settings(settings)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    request = Connect(partner, versions_url, token, raw_token)
    try:
        connection = connect_partner(
            role_url(settings, DbRole.OPERATOR), load_hub_keyring(settings), identity, request
        )
    except ConnectFailed as failed:
        if json_output:
            print_json(
                {"partner": str(partner), "connected": False, "status_code": failed.status,
                 "error": failed.message}
            )  # fmt: skip
        raise fail(failed.message, failed.exit_code) from None
    if json_output:
        print_json({"connected": True, **connection_json(connection)})
        return
    assert connection.registration is not None
    console.print(
        f"connected {partner} over OCPI {connection.registration.version} (hub-initiated): "
        f"{len(connection.registration.endpoints)} endpoints; the partner's token is stored "
        "sealed, the token the hub issued it is in the partner's hands only",
        highlight=False,
    )


def connections(
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Each partner's OCPI connection: state, version, endpoints, since when (never a token)."""
    settings = live_settings()
    with connect_db(role_url(settings, DbRole.READER)) as conn:
        partners = reference_store.list_partners(conn)
        current = {str(c.partner): c for c in ocpi_connections.current_all(conn)}
    rows = []
    for partner in partners:
        found = current.get(partner["party_ref"])
        row = {"partner": partner["party_ref"], "role": partner["role"], "state": "NEVER"}
        if found is not None:
            row |= connection_json(found)
        rows.append(row)
    if json_output:
        print_json(rows)
        return
    table = Table("partner", "role", "state", "by", "version", "endpoints", "since", "request id")
    for row in rows:
        endpoints = ", ".join(
            f"{e['identifier']}:{e['role'][0]}" for e in row.get("endpoints") or ()
        )
        table.add_row(
            row["partner"], row["role"], row["state"], row.get("initiated_by", ""),
            row.get("version") or "", endpoints, row.get("since", ""), row.get("request_id", ""),
        )  # fmt: skip
    console.print(table)


def disconnect(
    party: Annotated[str, typer.Option("--id", help="the partner, e.g. NL*TNM")],
    reason: Annotated[str, typer.Option("--reason", help="kept with the connection's history")],
) -> None:
    """End a partner's OCPI connection from the hub's side (its token stops working)."""
    partner = party_option(party)
    if not reason.strip():
        raise fail("--reason must say why (it is kept with the connection's history)", 2)
    settings = live_settings()
    request_id = f"cli-{uuid.uuid4()}"
    with connect_db(role_url(settings, DbRole.OPERATOR)) as conn:
        try:
            ended = ocpi_connections.disconnect(
                conn, partner, ocpi_connections.RequestIds(request_id, request_id), reason
            )
        except ocpi_connections.ConnectionRefused as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    console.print(
        f"{partner} disconnected (request id {ended.ids.request_id}); its token no longer "
        "works; `partners invite` starts a new connection",
        highlight=False,
    )


def connection_json(connection: ocpi_connections.Connection) -> dict[str, object]:
    """A connection for output: everything but its tokens."""
    registration = connection.registration
    return {
        "partner": str(connection.partner),
        "state": connection.event.value,
        "initiated_by": connection.initiated_by.value,
        "version": None if registration is None else registration.version,
        "versions_url": None if registration is None else registration.versions_url,
        "endpoints": []
        if registration is None
        else [e.model_dump(mode="json") for e in registration.endpoints],
        "since": connection.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "request_id": connection.ids.request_id,
        "correlation_id": connection.ids.correlation_id,
    }
