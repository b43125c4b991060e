"""OCPI connections (migration 0011): what each credentials handshake established, as an
append-only history per partner; the newest row is the connection in force.

    record(conn, partner, ConnectionEvent.REGISTERED, Initiator.PARTNER, ids, registration)
    current(conn, partner)           # Connection | None; .registered says whether it is live
    partner_token(keyring, found)    # the token the hub calls the partner with, unsealed

PostgreSQL holds the lifecycle (REGISTERED only when not registered, UPDATED and
UNREGISTERED only when registered) and lets exactly one of two racing handshakes in;
`record` turns either refusal into `ConnectionRefused`, which the credentials endpoint answers
with 405 as OCPI says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

import psycopg

from schemas.hub.party import PartyRef
from schemas.ocpi.credentials import CredentialsRole, Endpoint
from settlement.keys import HubKeyring
from settlement.partner_tokens import SealedToken, unseal
from settlement.store import ocpi_tokens
from settlement.store.db import Row, jsonb_exact

_LIFECYCLE_MARK: Final = "ocpi_connection:"  # the lifecycle trigger's messages start so


class ConnectionEvent(StrEnum):
    """What a connection row records."""

    REGISTERED = "REGISTERED"  # a handshake completed (credentials POST, or partners connect)
    UPDATED = "UPDATED"  # a credentials PUT: endpoints fetched again, tokens rotated
    UNREGISTERED = "UNREGISTERED"  # a credentials DELETE: the connection ended


class Initiator(StrEnum):
    """Who started what the row records."""

    PARTNER = "PARTNER"  # the partner called the hub's credentials endpoint
    HUB = "HUB"  # the hub called the partner's (`partners connect`), or its operator ended
    # the connection (`partners disconnect`)


class ConnectionRefused(Exception):
    """The event does not fit the partner's connection: registering a partner that is
    registered, or updating or unregistering one that is not (also: a handshake for the same
    partner that finished first). Nothing was stored; the credentials endpoint answers 405."""


@dataclass(frozen=True, slots=True)
class RequestIds:
    """The X-Request-ID and X-Correlation-ID of the request that made a row."""

    request_id: str
    correlation_id: str


@dataclass(frozen=True, slots=True)
class Registration:
    """How the hub reaches a registered partner, and how the partner reaches the hub."""

    version: str
    versions_url: str
    version_url: str
    endpoints: tuple[Endpoint, ...]
    roles: tuple[CredentialsRole, ...]  # as the partner presented them (business details)
    partner_token: SealedToken  # the hub calls the partner with it (settlement.partner_tokens)
    token_unencoded: bool  # send partner_token as it is, not base64 (OCPI 2.1.1 style)
    hub_token_hash: str  # the partner calls the hub with this token (ocpi_token)

    def endpoint(self, identifier: str, role: str | None = None) -> Endpoint | None:
        """The partner's endpoint for a module (and interface role), if it has one."""
        for endpoint in self.endpoints:
            if endpoint.identifier == identifier and (role is None or endpoint.role == role):
                return endpoint
        return None


@dataclass(frozen=True, slots=True)
class Connection:
    """One row: a partner's connection as of `created_at`."""

    partner: PartyRef
    seq: int
    event: ConnectionEvent
    initiated_by: Initiator
    registration: Registration | None  # None for UNREGISTERED
    hub_token_hash: str | None  # the token issued, or (UNREGISTERED) the one revoked
    ids: RequestIds
    created_at: datetime

    @property
    def registered(self) -> bool:
        return self.event is not ConnectionEvent.UNREGISTERED


_INSERT = """
INSERT INTO ocpi_connection (partner, event, initiated_by, version, versions_url, version_url,
    endpoints, roles, partner_token_key_id, partner_token_nonce, partner_token_sealed,
    token_unencoded, hub_token_hash, request_id, correlation_id)
VALUES (%(partner)s, %(event)s, %(initiated_by)s, %(version)s, %(versions_url)s,
    %(version_url)s, %(endpoints)s, %(roles)s, %(key_id)s, %(nonce)s, %(sealed)s,
    %(token_unencoded)s, %(hub_token_hash)s, %(request_id)s, %(correlation_id)s)
RETURNING *
"""


def record(
    conn: psycopg.Connection[Row],
    partner: PartyRef,
    event: ConnectionEvent,
    initiated_by: Initiator,
    ids: RequestIds,
    registration: Registration | None = None,
    hub_token_hash: str | None = None,
) -> Connection:
    """Append a row (in a savepoint); ConnectionRefused when the lifecycle forbids it."""
    assert (registration is None) == (event is ConnectionEvent.UNREGISTERED)
    values: dict[str, object] = {
        "partner": str(partner),
        "event": event.value,
        "initiated_by": initiated_by.value,
        "version": None,
        "versions_url": None,
        "version_url": None,
        "endpoints": None,
        "roles": None,
        "key_id": None,
        "nonce": None,
        "sealed": None,
        "token_unencoded": False,
        "hub_token_hash": hub_token_hash,
        "request_id": ids.request_id,
        "correlation_id": ids.correlation_id,
    }
    if registration is not None:
        values |= {
            "version": registration.version,
            "versions_url": registration.versions_url,
            "version_url": registration.version_url,
            "endpoints": jsonb_exact([e.model_dump(mode="json") for e in registration.endpoints]),
            "roles": jsonb_exact(
                [r.model_dump(mode="json", exclude_none=True) for r in registration.roles]
            ),
            "key_id": registration.partner_token.key_id,
            "nonce": registration.partner_token.nonce,
            "sealed": registration.partner_token.ciphertext,
            "token_unencoded": registration.token_unencoded,
            "hub_token_hash": registration.hub_token_hash,
        }
    try:
        with conn.transaction():
            row = conn.execute(_INSERT, values).fetchone()
    except psycopg.errors.CheckViolation as exc:
        message = exc.diag.message_primary or ""
        if not message.startswith(_LIFECYCLE_MARK):
            raise
        raise ConnectionRefused(message.removeprefix(_LIFECYCLE_MARK).strip()) from None
    except psycopg.errors.UniqueViolation:
        raise ConnectionRefused(f"another handshake for {partner} finished first") from None
    assert row is not None
    found = connection_of(row)
    assert found.partner == partner and found.event is event
    return found


def disconnect(
    conn: psycopg.Connection[Row], partner: PartyRef, ids: RequestIds, reason: str
) -> Connection:
    """The operator ends a partner's connection (the partner lost its token, or leaves): an
    UNREGISTERED row by the hub, and the token the partner called with stops working. The
    partner can then be invited again. ConnectionRefused when it is not registered."""
    found = current(conn, partner)
    if found is None or found.registration is None:
        raise ConnectionRefused(f"{partner} is not registered")
    hub_token = found.registration.hub_token_hash
    ended = record(
        conn, partner, ConnectionEvent.UNREGISTERED, Initiator.HUB, ids, hub_token_hash=hub_token
    )
    token = ocpi_tokens.lookup(conn, hub_token)
    if token is not None and token.revoked_at is None:
        ocpi_tokens.revoke(conn, hub_token, f"partners disconnect: {reason}")
    return ended


def connection_of(row: Row) -> Connection:
    """A connection from its row (of ocpi_connection or its views)."""
    registration = None
    if row["event"] != ConnectionEvent.UNREGISTERED.value:
        registration = Registration(
            version=row["version"],
            versions_url=row["versions_url"],
            version_url=row["version_url"],
            endpoints=tuple(Endpoint.model_validate(e) for e in row["endpoints"]),
            roles=tuple(CredentialsRole.model_validate(r) for r in row["roles"]),
            partner_token=SealedToken(
                row["partner_token_key_id"],
                bytes(row["partner_token_nonce"]),
                bytes(row["partner_token_sealed"]),
            ),
            token_unencoded=row["token_unencoded"],
            hub_token_hash=row["hub_token_hash"],
        )
    return Connection(
        partner=PartyRef.parse(row["partner"]),
        seq=row["seq"],
        event=ConnectionEvent(row["event"]),
        initiated_by=Initiator(row["initiated_by"]),
        registration=registration,
        hub_token_hash=row["hub_token_hash"],
        ids=RequestIds(row["request_id"], row["correlation_id"]),
        created_at=row["created_at"],
    )


def current(conn: psycopg.Connection[Row], partner: PartyRef) -> Connection | None:
    """The partner's connection in force (its newest row), None when it never had one."""
    row = conn.execute(
        "SELECT * FROM ocpi_connection_current WHERE partner = %s", (str(partner),)
    ).fetchone()
    return None if row is None else connection_of(row)


def current_all(conn: psycopg.Connection[Row]) -> list[Connection]:
    """Every partner's connection in force, by partner."""
    rows = conn.execute("SELECT * FROM ocpi_connection_current ORDER BY partner").fetchall()
    return [connection_of(row) for row in rows]


def history(conn: psycopg.Connection[Row], partner: PartyRef) -> list[Connection]:
    """Every row of the partner's connection, oldest first."""
    rows = conn.execute(
        "SELECT * FROM ocpi_connection WHERE partner = %s ORDER BY seq", (str(partner),)
    ).fetchall()
    return [connection_of(row) for row in rows]


def partner_token(keyring: HubKeyring, connection: Connection) -> str:
    """The token the hub calls a registered partner with (PartnerTokenError if it cannot be
    opened with this keyring)."""
    assert connection.registration is not None, "an unregistered partner has no token"
    return unseal(keyring, str(connection.partner), connection.registration.partner_token)
