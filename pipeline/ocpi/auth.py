"""Who is calling: the `Authorization: Token …` header of OCPI 2.2.1.

2.2.1 sends the token base64-encoded (`Token ZXhhbXBsZS10b2tlbg==`); 2.1.1 and many 2.2
implementations send it as it is. The hub reads the encoded form from everyone, and the raw
form only from partners whose token was issued with `raw_allowed` (`partners invite
--raw-token`): a raw token could also be valid base64 of something else, so trying both
for everyone would make the parse ambiguous. A decoded token's one trailing newline is
dropped (both examples in the spec encode one).

    ocpi_caller: a dependency for module endpoints (token C only)
    registration_caller: for versions and credentials (token A or C)

No header, an unknown or revoked token: 401 (and token A anywhere but versions and
credentials: 401, as the spec says).

    cached_ocpi_caller: `ocpi_caller` for the hot path (CDR POSTs): a token C found valid is
    believed for `TOKEN_CACHE_S` without asking PostgreSQL again, so a revocation takes up
    to that long to close it there (registration never uses the cache: token A dies at once)
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final

import psycopg
from fastapi import Depends, Header, Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from pipeline.api.db import Conn
from pipeline.ocpi.envelope import OcpiError, OcpiStatus
from schemas.hub.party import PartyRef
from settlement.store.db import Row
from settlement.store.ocpi_tokens import IssuedToken, TokenKind, lookup, token_hash

SCHEME: Final = "token"
TOKEN_CHARS_MAX: Final = 256  # OCPI's token is string(64); its base64 about 88
TOKEN_CACHE_S: Final = 1.0  # how long a valid token C is believed without a lookup
CACHED_TOKENS_MAX: Final = 10_000  # beyond, the cache starts again empty


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated partner and the token it used."""

    partner: PartyRef
    kind: TokenKind
    token_hash: str


def _unauthorized(message: str) -> OcpiError:
    return OcpiError(401, OcpiStatus.CLIENT_ERROR, message)


def _printable(text: str) -> bool:
    return bool(text) and all("!" <= char <= "~" for char in text)


def decoded_token(value: str) -> str | None:
    """The token inside a 2.2.1 header value, or None when it is not base64 of one."""
    try:
        raw = base64.b64decode(value, validate=True)
        text = raw.decode("ascii")
    except (binascii.Error, ValueError):
        return None
    text = text.removesuffix("\n")
    return text if _printable(text) else None


def _value(authorization: str | None) -> str:
    if authorization is None:
        raise _unauthorized("an Authorization header is required: Token <base64 of the token>")
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != SCHEME or not value:
        raise _unauthorized("the Authorization header must be: Token <base64 of the token>")
    if len(value) > TOKEN_CHARS_MAX:
        raise _unauthorized("the token is too long")
    return value


def identify(conn: psycopg.Connection[Row], authorization: str | None) -> IssuedToken:
    """The issued token the header carries (valid or not), else 401."""
    value = _value(authorization)
    token = decoded_token(value)
    found = None if token is None else lookup(conn, token_hash(token))
    if found is None and _printable(value):
        raw = lookup(conn, token_hash(value))
        if raw is not None and not raw.raw_allowed:
            raise _unauthorized(
                "send the token base64-encoded, as OCPI 2.2.1 does (this partner's tokens are "
                "not accepted unencoded)"
            )
        found = raw
    if found is None:
        raise _unauthorized("unknown token")
    if found.revoked_at is not None and found.revoked_at <= datetime.now(UTC):
        raise _unauthorized("this token was revoked; use the token the handshake issued")
    return found


def registration_caller(
    conn: Conn, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    found = identify(conn, authorization)
    return Caller(found.partner, found.kind, found.token_hash)


def ocpi_caller(conn: Conn, authorization: Annotated[str | None, Header()] = None) -> Caller:
    found = identify(conn, authorization)
    if found.kind is not TokenKind.C:
        raise _unauthorized(
            "the registration token (A) opens only versions and credentials: register first"
        )
    return Caller(found.partner, found.kind, found.token_hash)


RegistrationCaller = Annotated[Caller, Depends(registration_caller)]
OcpiCaller = Annotated[Caller, Depends(ocpi_caller)]


class CallerCache:
    """Authorization header values of valid C tokens -> their caller, for `TOKEN_CACHE_S`
    (only successes: an unknown token is looked up every time, so a new one works at once)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Caller, float]] = {}

    def get(self, authorization: str, now: float) -> Caller | None:
        entry = self._entries.get(authorization)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def put(self, authorization: str, caller: Caller, now: float) -> None:
        if len(self._entries) >= CACHED_TOKENS_MAX:
            self._entries.clear()
        self._entries[authorization] = (caller, now + TOKEN_CACHE_S)


def _pooled_caller(
    pool: ConnectionPool[psycopg.Connection[Row]], authorization: str | None
) -> Caller:
    with pool.connection() as conn:
        return ocpi_caller(conn, authorization)


async def cached_ocpi_caller(request: Request) -> Caller:
    """`ocpi_caller` without a PostgreSQL round trip for a token seen valid in the last
    `TOKEN_CACHE_S` (a lookup costs the request a pooled connection and a worker thread)."""
    authorization = request.headers.get("authorization")
    cache: CallerCache = request.app.state.ocpi_callers
    now = time.monotonic()
    if authorization is not None:
        caller = cache.get(authorization, now)
        if caller is not None:
            return caller
    caller = await run_in_threadpool(_pooled_caller, request.app.state.finance_pool, authorization)
    assert authorization is not None  # ocpi_caller refuses a request without one
    cache.put(authorization, caller, now)
    return caller
