"""Client-owned objects a partner pushes to the hub (OCPI 2.2.1 transport_and_format, "Client
Owned Object Push"): what the tariffs and locations receivers share.

Every authenticated PUT, PATCH and DELETE goes through `receive`, which answers in this order
and keeps the request, whatever the answer, as a receipt (settlement.store.ocpi_receipts) in
the same transaction as the version it stored:

1. a body over `BODY_BYTES_MAX`: HTTP 413 (its first `BODY_BYTES_MAX` bytes are kept);
2. a URL `{country_code}/{party_id}` that is not the caller's: HTTP 404, nothing stored (the
   spec allows 404 "blocking client access to objects that do not belong to them");
3. a body that is not JSON: HTTP 400 (the spec's MUST);
4. the module's own decision (`Decide`): HTTP 200 or 201 with 1000, or HTTP 200 with a
   2xxx status and every problem in `status_message` (a request that reached the OCPI layer
   gets no HTTP error for a business problem).

A fault of the hub's own while deciding is answered HTTP 500 with 3000, and the body is
still kept. What the decision stored is then published (pipeline.ocpi.publisher) before the
answer; if the broker does not acknowledge, the answer is 3000 "send it again" (the version
is stored already, and sending it again publishes it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from pipeline.ocpi.auth import Caller
from pipeline.ocpi.envelope import OcpiStatus, ocpi_body
from pipeline.ocpi.publisher import BrokerUnavailable, Publisher
from pipeline.reference import Outgoing
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.validation import Violation
from schemas.wire import encode_json_bytes
from settlement.sessions.document import unstorable
from settlement.store import ocpi_receipts
from settlement.store.db import Row

BODY_BYTES_MAX: Final = 1024 * 1024
"""A Location with a few hundred EVSEs is some 200 kB; a tariff a few kB."""
VIOLATIONS_LISTED_MAX: Final = 25
"""`status_message` lists this many problems, then says how many more there are."""
OBJECT_ID_CHARS_MAX: Final = 36  # Tariff.id, Location.id, Evse.uid, Connector.id: CiString(36)
JSON_DEPTH_MAX: Final = 32
"""OCPI objects nest six levels deep at most; deeper bodies are refused before any model or
encoder (orjson stops at 254 levels) recurses into them."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """One authenticated request to a client-owned object, as it arrived."""

    caller: Caller
    module: str  # tariffs, locations
    method: str  # GET, PUT, PATCH, DELETE
    path: tuple[str, ...]  # the URL after the module: country_code, party_id, id[, …]
    request_id: str
    correlation_id: str
    body: bytes | None
    truncated: bool
    at: datetime  # the hub's clock when it arrived

    @property
    def object_path(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to a request, and what it changed."""

    http_status: int
    status: OcpiStatus
    message: str
    object_key: str | None = None  # set exactly when accepted (1000)
    outgoing: Outgoing | None = None

    def __post_init__(self) -> None:
        assert (self.status is OcpiStatus.SUCCESS) == (self.object_key is not None)


def refused(status: OcpiStatus, message: str, http_status: int = 200) -> Decision:
    return Decision(http_status, status, message)


def accepted(key: str, created: bool, outgoing: Outgoing | None, message: str) -> Decision:
    """1000 with HTTP 201 for an object new to the hub, 200 for an update (the spec's SHOULD)."""
    return Decision(201 if created else 200, OcpiStatus.SUCCESS, message, key, outgoing)


def invalid(violations: Sequence[Violation]) -> Decision:
    """2001 with every violation, `path: rule`, in `status_message`."""
    listed = "; ".join(str(v) for v in violations[:VIOLATIONS_LISTED_MAX])
    more = len(violations) - VIOLATIONS_LISTED_MAX
    suffix = f"; and {more} more" if more > 0 else ""
    return refused(OcpiStatus.INVALID_PARAMETERS, listed + suffix)


def violation(path: str, rule: str, code: str) -> Violation:
    return Violation(path=path, rule=rule, code=code)


Decide = Callable[[psycopg.Connection[Row], Received, PartyRef, Any], Decision]
"""A module's decision on a request from the owner `PartyRef`, with its decoded body (None
for a DELETE); runs in the transaction that keeps the receipt."""


async def _read_body(request: Request) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if size + len(chunk) > BODY_BYTES_MAX:
            chunks.append(chunk[: BODY_BYTES_MAX - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


async def arrived(request: Request, caller: Caller, module: str, path: Sequence[str]) -> Received:
    body, truncated = await _read_body(request)
    return Received(
        caller=caller,
        module=module,
        method=request.method,
        path=tuple(path),
        request_id=request.state.request_id,
        correlation_id=request.state.correlation_id,
        body=body or None,
        truncated=truncated,
        at=datetime.now(UTC),
    )


def owned(caller: Caller, country_code: str, party_id: str) -> PartyRef | None:
    """The URL's party when it is the caller's, else None (answered 404). OCPI's
    country_code and party_id are CiStrings: `nl/tnm` is NL*TNM."""
    mine = caller.partner
    if country_code.upper() == mine.country_code and party_id.upper() == mine.party_id:
        return mine
    return None


def foreign(received: Received) -> Decision:
    return refused(
        OcpiStatus.CLIENT_ERROR,
        f"{received.path[0]}/{received.path[1]} is not a party this token belongs to "
        f"({received.caller.partner}): a partner reads and writes only its own objects",
        404,
    )


def _decided(conn: psycopg.Connection[Row], received: Received, decide: Decide) -> Decision:
    if received.truncated:
        return refused(
            OcpiStatus.INVALID_PARAMETERS, f"the body exceeds {BODY_BYTES_MAX} bytes", 413
        )
    cpo = owned(received.caller, received.path[0], received.path[1])
    if cpo is None:
        return foreign(received)
    document = None
    if received.method != "DELETE":
        try:
            document = loads_exact(received.body or b"")
        except (
            ValueError,
            UnicodeDecodeError,
            RecursionError,
        ) as exc:  # JSONDecodeError: a ValueError
            return refused(OcpiStatus.INVALID_PARAMETERS, f"the body is not JSON: {exc}", 400)
        if _deeper_than(document, JSON_DEPTH_MAX):
            return invalid([violation("$", f"nested deeper than {JSON_DEPTH_MAX} levels", "depth")])
        # text PostgreSQL's jsonb cannot hold (NUL, a lone surrogate) and NaN or Infinity,
        # which the lenient parser reads and the encoder would write as null
        unstored = unstorable(document)
        if unstored:
            return invalid(unstored)
    return decide(conn, received, cpo, document)


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether decoded JSON nests objects and arrays more than `limit` levels (iteratively:
    the point is not to recurse)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if not isinstance(value, list):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in value)
    return False


def _receipt(received: Received, decision: Decision) -> ocpi_receipts.Receipt:
    return ocpi_receipts.Receipt(
        partner=received.caller.partner,
        module=received.module,
        method=received.method,
        object_path=received.object_path,
        request_id=received.request_id,
        correlation_id=received.correlation_id,
        body=received.body,
        body_truncated=received.truncated,
        http_status=decision.http_status,
        status_code=int(decision.status),
        message=decision.message,
        object_key=decision.object_key,
    )


def _decide_and_keep(conn: psycopg.Connection[Row], received: Received, decide: Decide) -> Decision:
    try:
        with conn.transaction():
            decision = _decided(conn, received, decide)
            ocpi_receipts.record(conn, _receipt(received, decision))
        return decision
    except psycopg.OperationalError:
        raise  # PostgreSQL is gone: 503, nothing could be kept
    except Exception:
        # a fault of the hub's: the body is still kept, and the answer says it is ours (3000)
        log.exception("%s %s/%s failed", received.method, received.module, received.object_path)
        failed = refused(OcpiStatus.SERVER_ERROR, "the hub failed on this request", 500)
        with conn.transaction():
            ocpi_receipts.record(conn, _receipt(received, failed))
        return failed


def _respond(status: OcpiStatus, message: str, http_status: int, data: Any = None) -> Response:
    """The OCPI envelope, numbers written exactly as stored (data may hold Decimals)."""
    body = encode_json_bytes(ocpi_body(data, status, message))
    return Response(body, http_status, media_type="application/json")


def answer(decision: Decision) -> Response:
    return _respond(decision.status, decision.message, decision.http_status)


async def receive(
    request: Request,
    conn: psycopg.Connection[Row],
    caller: Caller,
    module: str,
    path: Sequence[str],
    decide: Decide,
) -> Response:
    """Read, decide, keep, publish and answer one PUT, PATCH or DELETE (module docstring)."""
    received = await arrived(request, caller, module, path)
    decision = await run_in_threadpool(_decide_and_keep, conn, received, decide)
    if decision.outgoing is not None:
        publisher: Publisher = request.app.state.publisher
        try:
            await publisher.send(decision.outgoing)
        except BrokerUnavailable as exc:
            return answer(
                refused(
                    OcpiStatus.SERVER_ERROR,
                    f"stored, but not yet published to the hub's topic ({exc}); send it again",
                )
            )
    return answer(decision)


def json_body(description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself (to keep it as received, and to
    answer 400 and 2001 as OCPI says rather than FastAPI's 422): the OpenAPI schema still
    says a JSON object is expected."""
    content = {"application/json": {"schema": {"type": "object"}}}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def found(data: Any) -> Response:
    """A GET's answer: the object as stored."""
    return _respond(OcpiStatus.SUCCESS, "Success", 200, data)


def not_found(what: str) -> Response:
    """A GET of an object the hub does not hold (or not the caller's): 404, the spec's SHOULD."""
    return _respond(OcpiStatus.CLIENT_ERROR, f"unknown {what}", 404)


def addressable(object_id: str) -> bool:
    """Whether a URL id can name an object the hub holds: at most `OBJECT_ID_CHARS_MAX`
    characters and no NUL (PostgreSQL's text cannot hold one, nor be asked for one)."""
    return len(object_id) <= OBJECT_ID_CHARS_MAX and "\x00" not in object_id


def id_problems(
    path_ids: Sequence[tuple[str, str]], document: Any, body_fields: Sequence[tuple[str, str]]
) -> list[Violation]:
    """Violations for URL ids that are too long or hold a NUL, and for body fields that
    differ from the URL segment they must equal (`(field, url value)`; a missing field is
    the schema's)."""
    problems = [
        violation(f"url.{name}", f"at most {OBJECT_ID_CHARS_MAX} characters", "string_too_long")
        for name, value in path_ids
        if len(value) > OBJECT_ID_CHARS_MAX
    ]
    problems += [
        violation(f"url.{name}", "must not contain the NUL character (U+0000)", "nul")
        for name, value in path_ids
        if "\x00" in value
    ]
    if isinstance(document, dict):
        for field, expected in body_fields:
            sent = document.get(field)
            if isinstance(sent, str) and sent.upper() != expected.upper():
                problems.append(
                    violation(
                        field, f"must equal the URL's {expected!r} (sent {sent!r})", "url_mismatch"
                    )
                )
    return problems
