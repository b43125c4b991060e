"""`/ocpi/2.2.1/credentials`: the partner-initiated credentials handshake (OCPI 2.2.1
credentials.asciidoc), the hub in the spec's "Receiver" part.

- `POST` registers: the body is the partner's Credentials (its versions URL and token B).
  Before answering, the hub GETs the partner's versions and 2.2.1 details with token B,
  checks the endpoints it needs, stores the connection (token B sealed, endpoints, the
  request's X-Request-ID/X-Correlation-ID), issues token C, revokes the token the POST came
  with (token A) and answers its own credentials (role HUB only) with token C.
- `PUT` does the same for a registered partner: endpoints fetched again, the new token B
  stored, a new token C issued and the old one revoked.
- `DELETE` unregisters: token C revoked, an UNREGISTERED row recorded.
- `GET` answers the hub's credentials with the token the caller used.

405 (HTTP) for POST when registered, and for GET/PUT/DELETE when not (a registration token A
counts as not registered: it opens only POST). A Credentials object that breaks the spec or
names roles the partner may not take: HTTP 200, 2001, every violation. The partner's API
unusable: 200 with 3001 (unreachable, an error, not OCPI), 3002 (no 2.2.1) or 3003 (an
endpoint the hub needs is missing); nothing is stored and the caller's token keeps working.

No database connection is held while the hub waits on the partner (up to
`partner_api.CALL_S_MAX` per call): POST and PUT authenticate, release the connection, call
out, then write in one transaction. PostgreSQL lets one of two racing handshakes in; the
other answers 405.
"""

from __future__ import annotations

from dataclasses import dataclass
from json import JSONDecodeError
from typing import Annotated, Final

import psycopg
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from pipeline.ocpi.auth import decoded_token, identify
from pipeline.ocpi.envelope import OcpiError, OcpiStatus, ocpi_response
from pipeline.ocpi.partner_api import HandshakeFailed, PartnerCall, discover, partner_client
from pipeline.ocpi.paths import VERSION_PATH
from pipeline.ocpi.registration import HubIdentity, check_endpoints, role_problems
from schemas.base import loads_exact
from schemas.hub.party import PartnerRole
from schemas.ocpi.credentials import Credentials
from schemas.validation import SchemaInvalid, parse_model
from settlement.keys import HubKeyring
from settlement.partner_tokens import seal
from settlement.store import ocpi_connections, ocpi_tokens, reference_store
from settlement.store.db import Row
from settlement.store.ocpi_connections import (
    Connection,
    ConnectionEvent,
    ConnectionRefused,
    Initiator,
    Registration,
    RequestIds,
)
from settlement.store.ocpi_tokens import IssuedToken, TokenKind

PATH: Final = f"{VERSION_PATH}/credentials"
CREDENTIALS_BODY_BYTES_MAX: Final = 16_384  # a Credentials object with a few roles: ~1 kB

router = APIRouter(tags=["ocpi"])
Authorization = Annotated[str | None, Header()]


@dataclass(frozen=True, slots=True)
class _Hub:
    """What the handlers need from the app (pipeline.api.app sets it up)."""

    pool: ConnectionPool[psycopg.Connection[Row]]
    identity: HubIdentity
    keyring: HubKeyring


@dataclass(frozen=True, slots=True)
class _Caller:
    token: IssuedToken
    partner_role: PartnerRole
    connection: Connection | None

    @property
    def registered(self) -> bool:
        """Registered, and calling with the handshake's token (not a token A)."""
        return (
            self.connection is not None
            and self.connection.registered
            and self.token.kind is TokenKind.C
        )


def _hub(request: Request) -> _Hub:
    state = request.app.state
    return _Hub(state.finance_pool, state.hub_identity, state.hub_keyring)


def _ids(request: Request) -> RequestIds:
    return RequestIds(request.state.request_id, request.state.correlation_id)


def _caller(pool: ConnectionPool[psycopg.Connection[Row]], authorization: str | None) -> _Caller:
    with pool.connection() as conn:
        token = identify(conn, authorization)
        role = reference_store.partner_role(conn, token.partner)
        assert role is not None, "a token belongs to a registered partner (0010's trigger)"
        return _Caller(token, role, ocpi_connections.current(conn, token.partner))


def _not_allowed(message: str) -> OcpiError:
    return OcpiError(405, OcpiStatus.CLIENT_ERROR, message)


def _require_registered(caller: _Caller) -> Connection:
    if not caller.registered:
        raise _not_allowed(
            f"{caller.token.partner} is not registered: POST its credentials first (with the "
            "registration token)"
        )
    assert caller.connection is not None
    return caller.connection


def _presented_token(authorization: str | None, token: IssuedToken) -> str:
    """The token in the header (the caller's own: GET answers with it)."""
    value = (authorization or "").strip().partition(" ")[2].strip()
    for candidate in (decoded_token(value), value):
        if candidate is not None and ocpi_tokens.token_hash(candidate) == token.token_hash:
            return candidate
    raise AssertionError("identify() found the token in this header")


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > CREDENTIALS_BODY_BYTES_MAX:
        raise OcpiError(413, OcpiStatus.INVALID_PARAMETERS, _too_large())
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > CREDENTIALS_BODY_BYTES_MAX:
            raise OcpiError(413, OcpiStatus.INVALID_PARAMETERS, _too_large())
    return bytes(body)


def _too_large() -> str:
    return f"a Credentials object is at most {CREDENTIALS_BODY_BYTES_MAX} bytes"


def _credentials(body: bytes) -> Credentials:
    """The partner's Credentials: invalid JSON 400; a violation of the spec 2001 (HTTP 200,
    since the request reached the OCPI layer), every one with its path."""
    try:
        document = loads_exact(body)
    except (JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise OcpiError(400, OcpiStatus.INVALID_PARAMETERS, f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OcpiError(200, OcpiStatus.INVALID_PARAMETERS, "$: must be a Credentials object")
    try:
        return parse_model(Credentials, document)
    except SchemaInvalid as exc:
        raise OcpiError(
            200, OcpiStatus.INVALID_PARAMETERS, "; ".join(str(v) for v in exc.violations)
        ) from None


def _handshake(hub: _Hub, caller: _Caller, body: bytes, ids: RequestIds) -> JSONResponse:
    """POST or PUT after the lifecycle check: validate, call the partner, store, answer."""
    partner = caller.token.partner
    credentials = _credentials(body)
    problems = role_problems(credentials, partner, caller.partner_role)
    if problems:
        raise OcpiError(200, OcpiStatus.INVALID_PARAMETERS, "; ".join(problems))
    unencoded = caller.token.raw_allowed
    try:
        with partner_client() as client:
            call = PartnerCall(client, credentials.token, unencoded, ids.correlation_id)
            found = discover(call, credentials.url)
        check_endpoints(found.details, partner, caller.partner_role)
    except HandshakeFailed as failed:
        return ocpi_response(None, failed.status, failed.message)
    update = caller.registered
    sealed = seal(hub.keyring, str(partner), credentials.token)
    with hub.pool.connection() as conn, conn.transaction():
        token = ocpi_tokens.issue(
            conn, partner, TokenKind.C, unencoded, "credentials PUT" if update else "credentials"
        )
        registration = Registration(
            version=found.details.version,
            versions_url=found.versions_url,
            version_url=found.version_url,
            endpoints=found.details.endpoints,
            roles=credentials.roles,
            partner_token=sealed,
            token_unencoded=unencoded,
            hub_token_hash=ocpi_tokens.token_hash(token),
        )
        event = ConnectionEvent.UPDATED if update else ConnectionEvent.REGISTERED
        try:
            ocpi_connections.record(conn, partner, event, Initiator.PARTNER, ids, registration)
        except ConnectionRefused as exc:
            raise _not_allowed(str(exc)) from None
        retired = {caller.token.token_hash}
        if update and caller.connection and caller.connection.registration:
            retired.add(caller.connection.registration.hub_token_hash)
        _revoke(conn, retired, "rotated (credentials PUT)" if update else "registered")
    return ocpi_response(hub.identity.credentials(token))


def _revoke(conn: psycopg.Connection[Row], hashes: set[str], reason: str) -> None:
    """Revoke each token still valid (one revoked by hand already stays as it is)."""
    for hashed in sorted(hashes):
        found = ocpi_tokens.lookup(conn, hashed)
        if found is not None and found.revoked_at is None:
            ocpi_tokens.revoke(conn, hashed, reason)


def _register(hub: _Hub, caller: _Caller, body: bytes, ids: RequestIds) -> JSONResponse:
    if caller.connection is not None and caller.connection.registered:
        raise _not_allowed(
            f"{caller.token.partner} is registered already: PUT to update the credentials, "
            "DELETE to unregister"
        )
    return _handshake(hub, caller, body, ids)


def _update(hub: _Hub, caller: _Caller, body: bytes, ids: RequestIds) -> JSONResponse:
    _require_registered(caller)
    return _handshake(hub, caller, body, ids)


@router.post(PATH, summary="Register: the partner's credentials for the hub's own")
async def post_credentials(request: Request, authorization: Authorization = None) -> JSONResponse:
    hub = _hub(request)
    caller = await run_in_threadpool(_caller, hub.pool, authorization)
    body = await _body(request)
    return await run_in_threadpool(_register, hub, caller, body, _ids(request))


@router.put(PATH, summary="Update: endpoints fetched again, tokens rotated")
async def put_credentials(request: Request, authorization: Authorization = None) -> JSONResponse:
    hub = _hub(request)
    caller = await run_in_threadpool(_caller, hub.pool, authorization)
    body = await _body(request)
    return await run_in_threadpool(_update, hub, caller, body, _ids(request))


@router.get(PATH, summary="The hub's credentials for a registered partner")
def get_credentials(request: Request, authorization: Authorization = None) -> JSONResponse:
    hub = _hub(request)
    caller = _caller(hub.pool, authorization)
    _require_registered(caller)
    return ocpi_response(hub.identity.credentials(_presented_token(authorization, caller.token)))


@router.delete(PATH, summary="Unregister: the partner's token revoked")
def delete_credentials(request: Request, authorization: Authorization = None) -> JSONResponse:
    hub = _hub(request)
    caller = _caller(hub.pool, authorization)
    connection = _require_registered(caller)
    assert connection.registration is not None
    hub_token = connection.registration.hub_token_hash
    with hub.pool.connection() as conn, conn.transaction():
        try:
            ocpi_connections.record(
                conn,
                caller.token.partner,
                ConnectionEvent.UNREGISTERED,
                Initiator.PARTNER,
                _ids(request),
                hub_token_hash=hub_token,
            )
        except ConnectionRefused as exc:
            raise _not_allowed(str(exc)) from None
        _revoke(conn, {hub_token, caller.token.token_hash}, "unregistered (credentials DELETE)")
    return ocpi_response(None)
