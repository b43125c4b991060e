"""The Sessions module, Receiver interface (OCPI 2.2.1 mod_sessions): CPOs push their
sessions here and may read them back.

    PUT   /ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}   a whole Session
    PATCH /ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}   what changed
    GET   /ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}   the session as held

An accepted push becomes one `session.event` on roamclear.session.events, carrying the whole
session as the hub holds it after the push, produced with the hub's proof and acked by the
broker before the answer (201 for a new session, 200 for an update, status 1000). What
settlement.sessions.push refuses is answered as the spec says: 2001 with every violation
(HTTP 200), 404 for a session of another party or a PATCH of a session never PUT, 400 for a
body that is not JSON, 413 beyond `SESSION_BODY_BYTES_MAX`; 503 when the broker did not ack.
Every authenticated push, accepted or not, is kept in session_push with its request ids.

A PATCH merges onto the session as the receiver itself last accepted it (session_push, read
under a per-session lock in the same PostgreSQL transaction that records the push), not onto
what the worker has consumed so far: the worker may lag or be down, and a merge onto a stale
state would drop charging periods the hub had already acknowledged. GET answers from the
same place, so a CPO reads back exactly what it was told was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Final
from uuid import UUID, uuid4

import anyio.from_thread
import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from pipeline.api.db import Conn
from pipeline.ocpi.auth import Caller
from pipeline.ocpi.envelope import OcpiStatus, ocpi_body
from pipeline.ocpi.paths import VERSION_PATH
from pipeline.ocpi.publisher import BrokerUnavailable, Publisher
from pipeline.ocpi.throttle import LimitedCaller
from pipeline.topics import Topic
from schemas.events import SessionEvent, envelope_bytes
from schemas.wire import encode_json_bytes
from settlement.sessions import push
from settlement.sessions.push import Accepted, Refusal, Refused, SessionRef
from settlement.store import session_pushes
from settlement.store.db import Row
from settlement.store.session_pushes import Push

SESSION_BODY_BYTES_MAX: Final = 1024 * 1024
"""A body beyond this is refused (413) and kept cut to this size."""
RETRY_AFTER_S: Final = 5
PATH: Final = f"{VERSION_PATH}/sessions/{{country_code}}/{{party_id}}/{{session_id}}"

router = APIRouter(tags=["ocpi"])

# HTTP status and OCPI status code of each refusal (docs/ocpi.md, "Sessions and missing CDRs")
ANSWERS: Final = {
    Refusal.MALFORMED_JSON: (400, OcpiStatus.INVALID_PARAMETERS),
    Refusal.BODY_TOO_LARGE: (413, OcpiStatus.INVALID_PARAMETERS),
    Refusal.NOT_OWNER: (404, OcpiStatus.CLIENT_ERROR),
    Refusal.UNKNOWN_SESSION: (404, OcpiStatus.CLIENT_ERROR),
    Refusal.INVALID_SESSION: (200, OcpiStatus.INVALID_PARAMETERS),
    Refusal.BROKER_UNAVAILABLE: (503, OcpiStatus.SERVER_ERROR),
}


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes
    truncated: bool  # larger than SESSION_BODY_BYTES_MAX: `data` is its beginning


async def _body(request: Request) -> Body:
    """The request body, read up to the limit (the rest is never read into memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > SESSION_BODY_BYTES_MAX:
            return Body(b"".join(chunks)[:SESSION_BODY_BYTES_MAX], True)
    return Body(b"".join(chunks), False)


RawBody = Annotated[Body, Depends(_body)]
_BODY_DOC: Final = {
    "requestBody": {
        "required": True,
        "description": "PUT: a whole OCPI 2.2.1 Session (schemas/json/ocpi.session.schema.json); "
        "PATCH: the fields that changed, with last_updated",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _answer(
    data: object,
    status: OcpiStatus,
    message: str,
    http_status: int,
    headers: dict[str, str] | None = None,
) -> Response:
    """The OCPI envelope with exact numbers (a session's Decimals are written as sent)."""
    body = encode_json_bytes(ocpi_body(data, status, message))
    return Response(body, http_status, headers, media_type="application/json")


def _refuse(conn: psycopg.Connection[Row], received: Push, refused: Refused) -> Response:
    http_status, status = ANSWERS[refused.reason]
    session_pushes.record(
        conn,
        replace(
            received,
            http_status=http_status,
            status_code=int(status),
            reason_code=refused.reason.value,
            message=refused.message,
            violations=refused.violations,
        ),
    )
    headers = {"Retry-After": str(RETRY_AFTER_S)} if http_status == 503 else None
    return _answer(None, status, refused.message, http_status, headers)


def _publish(request: Request, caller: Caller, accepted: Accepted, key: str) -> UUID:
    """Produce the session.event and wait for the ack (in the event loop); its event id."""
    publisher: Publisher = request.app.state.publisher
    event_id = uuid4()
    value = envelope_bytes(
        SessionEvent,
        submitter=caller.partner,
        payload=accepted.document,
        occurred_at=datetime.now(UTC),
        event_id=event_id,
    )
    topic = publisher.topic(Topic.SESSION_EVENTS)
    anyio.from_thread.run(publisher.publish, topic, key.encode(), value)
    return event_id


def _push(
    request: Request,
    conn: psycopg.Connection[Row],
    caller: Caller,
    method: str,
    url: tuple[str, str, str],
    body: Body,
) -> Response:
    received = Push(
        partner=str(caller.partner),
        method=method,
        url=url,
        session_key=None,
        request_id=request.state.request_id,
        correlation_id=request.state.correlation_id,
        body=body.data,
        body_truncated=body.truncated,
        http_status=0,
        status_code=0,
    )
    located = push.locate(caller.partner, *url)
    if isinstance(located, Refused):
        return _refuse(conn, received, located)
    key = located.key if located.id_valid else None
    received = replace(received, session_key=key)
    if body.truncated:
        message = f"the body is larger than {SESSION_BODY_BYTES_MAX} bytes"
        return _refuse(conn, received, Refused(Refusal.BODY_TOO_LARGE, message))
    document = push.decode_body(body.data)
    if isinstance(document, Refused):
        return _refuse(conn, received, document)
    with conn.transaction():
        if key is not None:
            session_pushes.lock(conn, key)
        held = None if key is None else session_pushes.held(conn, key)
        decided = _decide(located, method, held, document)
        if isinstance(decided, Refused):
            return _refuse(conn, received, decided)
        assert key is not None  # an accepted session has a valid id
        try:
            event_id = _publish(request, caller, decided, key)
        except BrokerUnavailable as exc:
            refused = Refused(Refusal.BROKER_UNAVAILABLE, f"{exc}; nothing was accepted, retry")
            return _refuse(conn, received, refused)
        http_status = 201 if held is None else 200
        session_pushes.record(
            conn,
            replace(
                received,
                http_status=http_status,
                status_code=int(OcpiStatus.SUCCESS),
                event_id=event_id,
                session=decided.document,
            ),
        )
    return _answer(None, OcpiStatus.SUCCESS, "Success", http_status)


def _decide(
    located: SessionRef, method: str, held: dict[str, object] | None, document: object
) -> Accepted | Refused:
    if method == "PUT":
        return push.put(located, document)
    return push.patch(located, held, document)


@router.put(PATH, summary="Push a whole session (creates or replaces it)", openapi_extra=_BODY_DOC)
def put_session(
    country_code: str,
    party_id: str,
    session_id: str,
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    body: RawBody,
) -> Response:
    return _push(request, conn, caller, "PUT", (country_code, party_id, session_id), body)


@router.patch(PATH, summary="Push what changed in a session", openapi_extra=_BODY_DOC)
def patch_session(
    country_code: str,
    party_id: str,
    session_id: str,
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    body: RawBody,
) -> Response:
    return _push(request, conn, caller, "PATCH", (country_code, party_id, session_id), body)


@router.get(PATH, summary="A session as the hub holds it (the caller's own only)")
def get_session(
    country_code: str, party_id: str, session_id: str, caller: LimitedCaller, conn: Conn
) -> Response:
    located = push.locate(caller.partner, country_code, party_id, session_id)
    held = None
    if isinstance(located, SessionRef) and located.id_valid:
        held = session_pushes.held(conn, located.key)
    if held is None:
        return _answer(None, OcpiStatus.CLIENT_ERROR, "no such session", 404)
    return _answer(held, OcpiStatus.SUCCESS, "Success", 200)
