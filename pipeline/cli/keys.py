"""`roamclear partners keys …` and `roamclear config hub-key`: the keys that prove who
submitted a CDR (settlement.clearing.proof; the partner's side: docs/ocpi.md).

    roamclear partners keys create --partner NL*TNM --out tnm.pem [--label L]
    roamclear partners keys add --partner NL*TNM --public-key tnm.pub.pem [--label L]
    roamclear partners keys list [--partner NL*TNM] [--json]
    roamclear partners keys revoke pk-5b0e6f1a2c3d [--at 2026-12-10T00:00:00Z] [--reason R]
    roamclear config hub-key [--generate]

`add` is the better practice (the partner makes its key pair and sends only the public key);
`create` makes the pair here and writes the private key once, to a new 0600 file.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, error_console, fail, print_json
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import generate_secret, key_file, load_hub_keyring
from schemas.hub.party import PartyRef
from settlement.store import partner_keys
from settlement.store.db import connect

keys = typer.Typer(help="Partners' signing keys (proof of the submitter).", no_args_is_help=True)
config = typer.Typer(help="Configuration: the hub key.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]
PartnerOpt = Annotated[str, typer.Option("--partner", help="the partner, e.g. NL*TNM")]
LabelOpt = Annotated[str, typer.Option("--label", help="a note, e.g. who holds it")]
_DATES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


def _party(text: str) -> PartyRef:
    try:
        return PartyRef.parse(text)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc


def _register(party: PartyRef, public_key: Ed25519PublicKey, label: str) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        try:
            key_id = partner_keys.add_key(conn, party, raw, label)
        except partner_keys.PartnerKeyError as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    return key_id


@keys.command("create")
def create(
    partner: PartnerOpt,
    out: Annotated[Path, typer.Option("--out", help="new file for the private key (PEM)")],
    label: LabelOpt = "",
) -> None:
    """Make a key pair for a partner; the private key goes once to a new 0600 file.

    The public key is registered. Prefer `add` where the partner can make its own pair.
    """
    party = _party(partner)
    if out.exists():
        raise fail(f"{out} exists: the private key is written only to a new file", 2)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    key_id = _register(party, private.public_key(), label)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    console.print(f"key {key_id} registered for {party}; private key written to {out}")
    typer.echo(key_id)


def _read_public_key(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes().strip()
    if data.startswith(b"-----BEGIN"):
        loaded = load_pem_public_key(data)
        if not isinstance(loaded, Ed25519PublicKey):
            raise fail(f"{path}: not an Ed25519 public key ({type(loaded).__name__})", 2)
        return loaded
    try:
        raw = base64.b64decode(data + b"=" * (-len(data) % 4), b"-_", validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise fail(
            f"{path}: neither a PEM public key nor 32 bytes in base64url ({exc})", 2
        ) from exc


@keys.command("add")
def add(
    partner: PartnerOpt,
    public_key: Annotated[
        Path,
        typer.Option(
            "--public-key", exists=True, dir_okay=False, help="PEM, or raw 32 bytes base64url"
        ),
    ],
    label: LabelOpt = "",
) -> None:
    """Register a public key the partner made (its private key never leaves the partner)."""
    key_id = _register(_party(partner), _read_public_key(public_key), label)
    console.print(f"key {key_id} registered for {partner.upper()}")
    typer.echo(key_id)


@keys.command("list")
def list_(
    partner: Annotated[str | None, typer.Option("--partner", help="only this partner")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Registered keys, revoked ones included (with when and why)."""
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.READER)) as conn:
        found = partner_keys.list_keys(conn, None if partner is None else _party(partner))
    if json_output:
        print_json([key.json() for key in found])
        return
    table = Table("key", "partner", "label", "created", "revoked", "fingerprint")
    for key in found:
        revoked = "-"
        if key.revoked_at is not None:
            revoked = f"{key.revoked_at:%Y-%m-%d %H:%M} {key.revocation_reason or ''}".strip()
        table.add_row(
            key.key_id,
            key.partner,
            key.label,
            f"{key.created_at:%Y-%m-%d %H:%M}",
            revoked,
            key.fingerprint,
        )
    console.print(table)


@keys.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key, e.g. pk-5b0e6f1a2c3d")],
    at: Annotated[
        datetime | None,
        typer.Option("--at", formats=_DATES, help="from when (UTC unless it has an offset)"),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="why, for the record")] = "",
) -> None:
    """Refuse a key for every record decided from now (or --at) on.

    A rollover: `add` the new key, switch the producers to it, wait until the old key's
    records are cleared, then revoke the old one.
    """
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    settings = live_settings()
    assert settings.database_url is not None
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        try:
            revoked_at = partner_keys.revoke_key(conn, key_id, at, reason)
        except partner_keys.PartnerKeyError as exc:
            raise fail(str(exc), 2) from exc
        conn.commit()
    console.print(f"key {key_id} refused from {revoked_at.isoformat()}")


@config.command("hub-key")
def hub_key(
    generate: Annotated[
        bool, typer.Option("--generate", help="print a new secret (for ROAMCLEAR_HUB_KEY)")
    ] = False,
) -> None:
    """Show which hub key is in use (its id, never the secret), or generate a new secret."""
    if generate:
        typer.echo(generate_secret())
        return
    settings = Settings.from_env()
    keyring = load_hub_keyring(settings)
    source = (
        "ROAMCLEAR_HUB_KEY"
        if settings.hub_key
        else str(settings.hub_key_file or key_file(settings))
    )
    console.print(f"hub key {keyring.current.key_id} (from {source})")
    for key in keyring.previous:
        error_console.print(f"  still verifies: {key.key_id}")
