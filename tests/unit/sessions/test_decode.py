"""A session.events record becomes a version only with a proof of its submitter, as a
session.event, conforming and storable, and of the submitter's own party."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.wire import encode_json_bytes
from settlement.clearing.outcome import Rejected
from settlement.clearing.proof import PartnerKey, hub_signature, proof_headers
from settlement.sessions.decode import SessionVersion, decode_session_event
from tests.unit.sessions.factories import session

TOPIC = "roamclear.session.events"
HUB_ID = "hub-0123456789ab"
HUB_KEY = bytes(range(32))
NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)


@dataclass
class Keys:
    def hub_key(self, key_id: str) -> bytes | None:
        return HUB_KEY if key_id == HUB_ID else None

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return None


def _value(payload: Any, submitter: str = "NL*TNM", kind: str = "session.event") -> bytes:
    country, party = submitter.split("*")
    return encode_json_bytes(
        {"event_id": str(uuid.uuid4()), "type": kind, "version": 1,
         "occurred_at": "2026-03-04T10:00:01Z",
         "submitter": {"country_code": country, "party_id": party}, "session": payload}
    )  # fmt: skip


def _decode(value: bytes, signed: bool = True) -> SessionVersion | Rejected:
    headers = proof_headers(HUB_ID, hub_signature(HUB_KEY, TOPIC, HUB_ID, value)) if signed else []
    return decode_session_event(TOPIC, value, headers, Keys(), NOW)


def test_a_proven_session_event_is_a_version() -> None:
    version = _decode(_value(session()))
    assert isinstance(version, SessionVersion)
    assert version.key == "NL*TNM*SES-1" and str(version.emsp) == "DE*EMP"
    assert version.proof == HUB_ID and version.document["x_vendor"] == "kept"
    assert version.occurred_at == datetime(2026, 3, 4, 10, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "signed", "reason", "says"),
    [
        (_value(session()), False, "unauthenticated_submitter", "no proof"),
        (b'{"event_id": ', True, "malformed_json", "not JSON"),
        (_value(session(), kind="cdr.submitted"), True, "wrong_event_type", "session.event"),
        (_value(session(), submitter="NL*ABC"), True, "not_owner", "belongs to NL*TNM"),
        (_value(session(status="RESERVED")), True, "schema_invalid", "session.status"),
        (_value(session(id="")), True, "schema_invalid", "session.id: must not be empty"),
        (_value(session(x="a\x00b")), True, "schema_invalid", "session.x"),
        (_value(None), True, "schema_invalid", "session: field required"),
    ],
)
def test_what_is_rejected_and_why(value: bytes, signed: bool, reason: str, says: str) -> None:
    rejected = _decode(value, signed)
    assert isinstance(rejected, Rejected) and str(rejected.reason) == reason
    assert says in rejected.message, rejected.message


def test_a_signature_covers_the_value() -> None:
    value = _value(session())
    headers = proof_headers(HUB_ID, hub_signature(HUB_KEY, TOPIC, HUB_ID, value))
    altered = value.replace(b'"ACTIVE"', b'"INVALID"')
    rejected = decode_session_event(TOPIC, altered, headers, Keys(), NOW)
    assert isinstance(rejected, Rejected) and "does not match" in rejected.message
