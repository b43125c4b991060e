"""A roamclear.session.events record → a session version, or a rejection with its reason.

    {"event_id": "…", "type": "session.event", "version": 1,
     "occurred_at": "2026-03-04T10:15:02Z",
     "submitter": {"country_code": "NL", "party_id": "TNM"},
     "session": {…the whole OCPI 2.2.1 Session, as the hub holds it after the update…}}

The same rules as a CDR on cdr.submitted (settlement.clearing): the record must carry a
proof of its submitter (the hub's, which the OCPI receiver adds, or the submitter's own
partner key), the envelope must be a session.event, the session must conform to OCPI 2.2.1
and be storable, and it must be the submitter's own. Rejections use the clearing reason
codes (`unauthenticated_submitter`, `malformed_json`, `envelope_invalid`, `wrong_event_type`,
`schema_invalid`, `not_owner`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.base import loads_exact
from schemas.events import EventType, RawEnvelope
from schemas.hub.party import PartyRef
from schemas.ocpi.session import Session
from schemas.validation import SchemaInvalid, Violation, parse_model
from settlement.clearing.outcome import Rejected
from settlement.clearing.proof import Proof, ProofKeys, authenticate, claim_refused
from settlement.clearing.reasons import Reason, Stage
from settlement.sessions.document import session_key, unstorable

PAYLOAD = "session"


@dataclass(frozen=True, slots=True)
class SessionVersion:
    """One version of a session, as a proven submitter sent it."""

    event_id: str
    submitter: PartyRef
    occurred_at: datetime  # when the hub accepted the update (the envelope's)
    proof: str  # the key that proved the submitter
    document: dict[str, Any]  # the session as sent: unknown fields kept, numbers exact
    session: Session

    @property
    def cpo(self) -> PartyRef:
        return PartyRef.of(self.session.country_code, self.session.party_id)

    @property
    def emsp(self) -> PartyRef:
        token = self.session.cdr_token
        return PartyRef.of(token.country_code, token.party_id)

    @property
    def key(self) -> str:
        return session_key(self.cpo, self.session.id)


def _prefixed(violations: Sequence[Violation]) -> tuple[Violation, ...]:
    return tuple(
        Violation(
            path=PAYLOAD if v.path == "$" else f"{PAYLOAD}.{v.path}", rule=v.rule, code=v.code
        )
        for v in violations
    )


def _invalid(violations: Sequence[Violation], submitter: PartyRef) -> Rejected:
    return Rejected(
        Reason.SCHEMA_INVALID,
        Stage.DECODE,
        "; ".join(str(v) for v in violations)[:2000],
        tuple(violations),
        submitter=submitter,
    )


def _document(value: bytes | None) -> Any | Rejected:
    if value is None:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, "the record has no value")
    encoding = json.detect_encoding(value)
    if encoding not in ("utf-8", "utf-8-sig"):
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, f"not UTF-8: {encoding.upper()}")
    try:
        return loads_exact(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, f"not JSON: {exc}")
    except (RecursionError, ValueError) as exc:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, f"not JSON we read: {exc}"[:500])


def decode_session_event(
    topic: str,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    keys: ProofKeys,
    now: datetime,
) -> SessionVersion | Rejected:
    """The version a record carries, or why it is rejected (proof first: an unproven record
    is rejected whatever it holds, and its claimed submitter is never named as proven)."""
    proof = authenticate(headers, topic, value, keys, now)
    if isinstance(proof, Rejected):
        return proof
    document = _document(value)
    if isinstance(document, Rejected):
        return document
    try:
        envelope = parse_model(RawEnvelope, document)
    except SchemaInvalid as exc:
        return Rejected(Reason.ENVELOPE_INVALID, Stage.DECODE, exc.as_text()[:2000], exc.violations)
    submitter = envelope.submitter
    if envelope.type is not EventType.SESSION_EVENT:
        return Rejected(
            Reason.WRONG_EVENT_TYPE,
            Stage.DECODE,
            f"expected a session.event, got {envelope.type.value}",
            submitter=submitter,
        )
    refused = claim_refused(proof, envelope.submitter)
    if refused is not None:
        return refused
    return _version(envelope, proof)


def _version(envelope: RawEnvelope, proof: Proof) -> SessionVersion | Rejected:
    submitter = envelope.submitter
    payload = envelope.payload
    if not isinstance(payload, dict):
        rule = "field required" if payload is None else "must be an object"
        return _invalid((Violation(path=PAYLOAD, rule=rule, code="missing"),), submitter)
    problems = _prefixed(unstorable(payload))
    try:
        session = parse_model(Session, payload)
    except SchemaInvalid as exc:
        return _invalid((*problems, *_prefixed(exc.violations)), submitter)
    if not session.id:
        problems = (
            *problems,
            Violation(path=f"{PAYLOAD}.id", rule="must not be empty", code="too_short"),
        )
    if problems:
        return _invalid(problems, submitter)
    version = SessionVersion(
        str(envelope.event_id), envelope.submitter, envelope.occurred_at, proof.key_id, payload,
        session,
    )  # fmt: skip
    if version.cpo != envelope.submitter:
        return Rejected(
            Reason.NOT_OWNER,
            Stage.VALIDATE,
            f"session {version.key} belongs to {version.cpo}, not to its submitter {submitter}",
            submitter=submitter,
        )
    return version
