"""A CPO's PUT or PATCH of a session (OCPI 2.2.1 mod_sessions, Receiver interface), applied to
the session as the hub holds it. Pure: the receiver (pipeline.ocpi.sessions) reads the
current state from PostgreSQL, calls `put` or `patch`, and stores what they decide.

PUT carries the whole Session and replaces what the hub holds, charging periods included
(omitted or `[]`: none). PATCH carries only what changed and SHALL contain `last_updated`;
its `charging_periods` are appended (omitted, `null` or `[]`: unchanged), every other field
replaces the stored one, and `null` removes an optional one. Unknown fields are kept.

    held     {"status": "ACTIVE", "kwh": 5, "charging_periods": [P1], …}
    PATCH    {"kwh": 9, "charging_periods": [P2], "last_updated": "2026-03-04T10:15:00Z"}
    result   {"status": "ACTIVE", "kwh": 9, "charging_periods": [P1, P2], …,
              "last_updated": "2026-03-04T10:15:00Z"}

The URL names the session (`/sessions/NL/TNM/SES-1`): its country code and party id must be
the caller's (else `NOT_OWNER`: the hub answers 404, as for a session that is not there, and
as OCPI allows), and the body's party and id the URL's (else a violation at `country_code`,
`party_id` or `id`: 2001, as OCPI advises for a body that contradicts its URL). Every
violation of the result is reported at once, each with its JSON path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.ocpi.session import Session
from schemas.validation import SchemaInvalid, Violation, parse_model
from schemas.wire import encode_json_bytes
from settlement.sessions.document import session_key, unstorable

SESSION_ID_CHARS_MAX: Final = 36  # Session.id is CiString(36)
CHARGING_PERIODS_MAX: Final = 5_000
"""Periods one session may hold: a period a minute for three and a half days."""
DOCUMENT_BYTES_MAX: Final = 800 * 1024
"""A session travels whole in one Kafka record (Apache Kafka's default limit: 1 MiB)."""
_PRINTABLE: Final = frozenset(chr(code) for code in range(0x20, 0x7F))  # a CiString's
_PERIOD_PATH: Final = re.compile(r"^charging_periods\[(\d+)\](.*)$", re.DOTALL)


class Refusal(StrEnum):
    """Why a push is not accepted (the reason code it is kept with)."""

    MALFORMED_JSON = "malformed_json"  # the body is not JSON (HTTP 400)
    BODY_TOO_LARGE = "body_too_large"  # beyond the receiver's body limit (HTTP 413)
    NOT_OWNER = "not_owner"  # the URL's party is not the caller's (HTTP 404)
    UNKNOWN_SESSION = "unknown_session"  # a PATCH of a session never PUT (HTTP 404)
    INVALID_SESSION = "invalid_session"  # the result breaks OCPI or a limit (OCPI 2001)
    BROKER_UNAVAILABLE = "broker_unavailable"  # the event was not acked in time (HTTP 503)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal
    message: str
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionRef:
    """The session a URL names, once its party is known to be the caller's."""

    party: PartyRef
    session_id: str

    @property
    def id_valid(self) -> bool:
        return 0 < len(self.session_id) <= SESSION_ID_CHARS_MAX and all(
            char in _PRINTABLE for char in self.session_id
        )

    @property
    def key(self) -> str:
        return session_key(self.party, self.session_id)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The session as the hub holds it after the push: the document as sent (merged, for a
    PATCH), a valid OCPI 2.2.1 Session."""

    document: dict[str, Any]


def locate(
    caller: PartyRef, country_code: str, party_id: str, session_id: str
) -> SessionRef | Refused:
    """The session a URL names, or NOT_OWNER when its party is not the caller's."""
    if (country_code.upper(), party_id.upper()) != (caller.country_code, caller.party_id):
        return Refused(
            Refusal.NOT_OWNER,
            f"no session of {country_code}*{party_id} here for {caller}: a partner pushes and "
            "reads only its own sessions",
        )
    return SessionRef(caller, session_id)


def decode_body(body: bytes) -> object:
    """The body as JSON (numbers exact), or MALFORMED_JSON saying why it is not."""
    encoding = json.detect_encoding(body) if body else "utf-8"
    if encoding not in ("utf-8", "utf-8-sig"):
        return Refused(Refusal.MALFORMED_JSON, f"not UTF-8 JSON: the body is {encoding.upper()}")
    try:
        return loads_exact(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Refused(Refusal.MALFORMED_JSON, f"not JSON: {exc}")
    except (RecursionError, ValueError) as exc:  # nested too deep, an integer too long
        return Refused(Refusal.MALFORMED_JSON, f"not JSON the hub reads: {exc}"[:500])


def _url_violations(ref: SessionRef, document: Mapping[str, Any]) -> list[Violation]:
    found = []
    if not ref.id_valid:
        found.append(
            Violation(
                path="url.session_id",
                rule=f"must be 1 to {SESSION_ID_CHARS_MAX} printable ASCII characters",
                code="session_id",
            )
        )
    for name, expected in (
        ("country_code", ref.party.country_code),
        ("party_id", ref.party.party_id),
    ):
        value = document.get(name)
        if isinstance(value, str) and value.upper() != expected:
            found.append(
                Violation(
                    path=name,
                    rule=f"must be the URL's, the caller's ({expected}): a partner pushes only "
                    "its own sessions",
                    code="party_mismatch",
                )
            )
    body_id = document.get("id")
    if isinstance(body_id, str) and body_id.upper() != ref.session_id.upper():
        found.append(
            Violation(
                path="id",
                rule=f"must be the session_id of the URL ({ref.session_id[:SESSION_ID_CHARS_MAX]})",
                code="id_mismatch",
            )
        )
    return found


def _limits(document: Mapping[str, Any]) -> list[Violation]:
    periods = document.get("charging_periods")
    if isinstance(periods, list) and len(periods) > CHARGING_PERIODS_MAX:
        return [
            Violation(
                path="charging_periods",
                rule=f"{len(periods)} periods; a session holds at most {CHARGING_PERIODS_MAX} "
                "(PUT it again with fewer)",
                code="too_long",
            )
        ]
    try:
        size = len(encode_json_bytes(document))
    except (orjson.JSONEncodeError, TypeError, ValueError):
        return []  # `unstorable` names the place
    if size > DOCUMENT_BYTES_MAX:
        return [
            Violation(
                path="$",
                rule=f"the session is {size} bytes as JSON; at most {DOCUMENT_BYTES_MAX}",
                code="too_large",
            )
        ]
    return []


def _accepted(
    ref: SessionRef,
    document: dict[str, Any],
    found: list[Violation],
    checked: dict[str, Any] | None = None,
) -> Accepted | Refused:
    """`document` if it is a valid session of `ref`. `checked` is the part still to check
    (a PATCH: the merged session with only the periods it appends, and the patch's own
    values; the held session was checked when it was accepted), else the whole document."""
    fresh = document if checked is None else checked
    found = [*found, *_url_violations(ref, document), *unstorable(fresh), *_limits(document)]
    try:
        parse_model(Session, fresh)
    except SchemaInvalid as exc:
        found.extend(exc.violations)
    if found:
        ordered = tuple(dict.fromkeys(found))  # one line per distinct violation
        return Refused(Refusal.INVALID_SESSION, "; ".join(str(v) for v in ordered), ordered)
    return Accepted(document)


def _not_object(what: str) -> Refused:
    violation = Violation(path="$", rule=f"{what} must be a JSON object", code="model_type")
    return Refused(Refusal.INVALID_SESSION, str(violation), (violation,))


def put(ref: SessionRef, body: object) -> Accepted | Refused:
    """A PUT: the body is the whole session."""
    if not isinstance(body, dict):
        return _not_object("a PUT body (a Session)")
    return _accepted(ref, dict(body), [])


def patch(ref: SessionRef, held: Mapping[str, Any] | None, body: object) -> Accepted | Refused:
    """A PATCH applied to the session the hub holds (None: it holds none).

    Checking costs what the PATCH carries, not what the session holds: the held periods
    were checked when they were accepted, so only the appended ones are validated again
    (a session with a period a minute is PATCHed hundreds of times)."""
    if not isinstance(body, dict):
        return _not_object("a PATCH body")
    if held is None:
        return Refused(
            Refusal.UNKNOWN_SESSION,
            f"no session {ref.key} here to PATCH: PUT the whole session first",
        )
    found: list[Violation] = []
    if body.get("last_updated") is None:
        found.append(
            Violation(
                path="last_updated",
                rule="field required: a PATCH SHALL contain last_updated",
                code="missing",
            )
        )
    merged = dict(held)
    appended: list[Any] = []
    for name, value in body.items():
        if name == "charging_periods":
            if value is None:
                continue
            if not isinstance(value, list):
                found.append(
                    Violation(path="charging_periods", rule="must be an array", code="list_type")
                )
                continue
            existing = merged.get("charging_periods")
            merged[name] = [*(existing if isinstance(existing, list) else ()), *value]
            appended = value
        elif value is None:
            merged.pop(name, None)  # an optional field set to null: no value any more
        else:
            merged[name] = value
    checked = {**merged, "charging_periods": appended}
    result = _accepted(ref, merged, found, checked)
    return _as_sent(result) if isinstance(result, Refused) and appended else result


def _as_sent(refused: Refused) -> Refused:
    """Violations in the appended periods, named as such: their index is the one the PATCH
    sent them under (`charging_periods[0].dimensions (appended)`), not the merged one."""

    def marked(found: Violation) -> Violation:
        if _PERIOD_PATH.match(found.path) is None:
            return found
        return Violation(path=f"{found.path} (appended)", rule=found.rule, code=found.code)

    ordered = tuple(marked(found) for found in refused.violations)
    return Refused(refused.reason, "; ".join(str(v) for v in ordered), ordered)
