"""What partners PUT and PATCH to the hub's sessions receiver, kept whole (table session_push,
migration 0013), and the session as the receiver holds it.

Every authenticated push is one row: the body exactly as received, the URL, the token's
partner, the request and correlation ids, and its outcome: ACCEPTED with the event it became
and the whole session after it, or REJECTED with the reason, the OCPI status and every
violation. Nothing is updated: the session the receiver holds is its newest accepted push.

    with conn.transaction():
        lock(conn, "NL*TNM*SES-1")             # pushes of one session, one at a time
        before = held(conn, "NL*TNM*SES-1")    # None: never accepted
        …produce the event, wait for the broker's ack…
        record(conn, Push(…, outcome=ACCEPTED, event_id=…, session=…))

The lock is held until the transaction ends, so a PATCH always merges onto the push accepted
just before it, even when the same session is pushed from two connections at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from schemas.validation import Violation
from settlement.store.clearing_rows import storable
from settlement.store.db import Row, jsonb_exact

URL_SEGMENT_CHARS_MAX: Final = 256
MESSAGE_CHARS_MAX: Final = 4000
LOCK_SPACE: Final = 0x5E55  # the first key of every session push lock ("SESS")


@dataclass(frozen=True, slots=True)
class Push:
    """One push as received and decided."""

    partner: str
    method: str  # PUT or PATCH
    url: tuple[str, str, str]  # country_code, party_id, session_id as sent
    session_key: str | None
    request_id: str
    correlation_id: str
    body: bytes
    body_truncated: bool
    http_status: int
    status_code: int
    reason_code: str | None = None  # None: accepted
    message: str | None = None
    violations: tuple[Violation, ...] = ()
    event_id: UUID | None = None
    session: dict[str, Any] | None = field(default=None)

    @property
    def accepted(self) -> bool:
        return self.reason_code is None


def lock(conn: psycopg.Connection[Row], session_key: str) -> None:
    """Take the session's lock until the current transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_SPACE, session_key))


def held(conn: psycopg.Connection[Row], session_key: str) -> dict[str, Any] | None:
    """The session as the receiver holds it (its newest accepted push), or None."""
    row = conn.execute(
        "SELECT session FROM session_push WHERE session_key = %s AND outcome = 'ACCEPTED'"
        " ORDER BY push_id DESC LIMIT 1",
        (session_key,),
    ).fetchone()
    return None if row is None else dict(row["session"])


def _segment(text: str) -> str:
    return storable(text[:URL_SEGMENT_CHARS_MAX])


def record(conn: psycopg.Connection[Row], push: Push) -> int:
    """Store the push; returns its id."""
    assert push.accepted == (push.event_id is not None and push.session is not None)
    violations = Jsonb(
        [
            {"path": storable(v.path), "rule": storable(v.rule), "code": storable(v.code)}
            for v in push.violations
        ]
    )
    row = conn.execute(
        "INSERT INTO session_push (partner, method, url_country_code, url_party_id,"
        " url_session_id, session_key, request_id, correlation_id, body, body_truncated,"
        " outcome, http_status, status_code, reason_code, message, violations, event_id,"
        " session) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s) RETURNING push_id",
        (
            push.partner,
            push.method,
            *(_segment(part) for part in push.url),
            push.session_key,
            push.request_id,
            push.correlation_id,
            push.body,
            push.body_truncated,
            "ACCEPTED" if push.accepted else "REJECTED",
            push.http_status,
            push.status_code,
            push.reason_code,
            None if push.message is None else storable(push.message[:MESSAGE_CHARS_MAX]),
            violations,
            push.event_id,
            None if push.session is None else jsonb_exact(push.session),
        ),
    ).fetchone()
    assert row is not None
    return int(row["push_id"])


def pushes(
    conn: psycopg.Connection[Row], session_key: str, limit: int = 1000
) -> list[dict[str, Any]]:
    """A session's pushes, oldest first (bodies left out: `body_bytes` says their size)."""
    return conn.execute(
        "SELECT push_id, received_at, partner, method, request_id, correlation_id,"
        " length(body) AS body_bytes, body_truncated, outcome, http_status, status_code,"
        " reason_code, message, violations, event_id FROM session_push"
        " WHERE session_key = %s ORDER BY push_id LIMIT %s",
        (session_key, limit),
    ).fetchall()


def rejected_pushes(
    conn: psycopg.Connection[Row], partner: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Refused pushes, newest first, for one partner or all."""
    return conn.execute(
        "SELECT push_id, received_at, partner, method, url_country_code, url_party_id,"
        " url_session_id, session_key, request_id, http_status, status_code, reason_code,"
        " message FROM session_push WHERE outcome = 'REJECTED'"
        " AND (%(partner)s::text IS NULL OR partner = %(partner)s)"
        " ORDER BY push_id DESC LIMIT %(limit)s",
        {"partner": partner, "limit": limit},
    ).fetchall()
