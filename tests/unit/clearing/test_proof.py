"""Proofs of the submitter: hub HMACs and partner Ed25519 signatures, and every way a record
can fail to carry one."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.hub.party import PartyRef
from settlement.clearing.outcome import Rejected
from settlement.clearing.proof import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    PartnerKey,
    Proof,
    authenticate,
    claim_refused,
    hub_signature,
    proof_headers,
    signed_message,
)
from settlement.clearing.reasons import Reason, Stage

TOPIC = "roamclear.cdr.submitted"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
VALUE = b'{"event_id":"e1","submitter":{"country_code":"NL","party_id":"TNM"},"cdr":{}}'
HUB_ID = "hub-0123456789ab"
HUB_KEY = bytes(range(32))
TNM = PartyRef.parse("NL*TNM")


@dataclass
class Keys:
    hub: dict[str, bytes] = field(default_factory=lambda: {HUB_ID: HUB_KEY})
    partners: dict[str, PartnerKey] = field(default_factory=dict)

    def hub_key(self, key_id: str) -> bytes | None:
        return self.hub.get(key_id)

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return self.partners.get(key_id)


def _partner(keys: Keys, key_id: str, party: PartyRef, revoked_at: datetime | None = None):
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    keys.partners[key_id] = PartnerKey(key_id, party, raw, revoked_at)
    return private


def _signed(private: Ed25519PrivateKey, key_id: str, value: bytes = VALUE, topic: str = TOPIC):
    signature = private.sign(signed_message(topic, key_id, value))
    return proof_headers(key_id, base64.urlsafe_b64encode(signature).decode().rstrip("="))


def _hub_headers(value: bytes = VALUE, topic: str = TOPIC) -> list[tuple[str, bytes]]:
    return proof_headers(HUB_ID, hub_signature(HUB_KEY, topic, HUB_ID, value))


def _reason(result: Proof | Rejected) -> str:
    assert isinstance(result, Rejected), result
    assert result.reason is Reason.UNAUTHENTICATED_SUBMITTER
    assert result.stage is Stage.AUTHENTICATE
    assert result.submitter is None  # a claim is never recorded as the submitter
    return result.message


def test_the_hub_proof_vouches_for_the_envelope() -> None:
    assert authenticate(_hub_headers(), TOPIC, VALUE, Keys(), NOW) == Proof(HUB_ID, None)


def test_a_partner_signature_proves_its_party() -> None:
    keys = Keys()
    private = _partner(keys, "pk-aaaaaaaaaaaa", TNM)
    proof = authenticate(_signed(private, "pk-aaaaaaaaaaaa"), TOPIC, VALUE, keys, NOW)
    assert proof == Proof("pk-aaaaaaaaaaaa", TNM)
    assert claim_refused(proof, TNM) is None  # type: ignore[arg-type]


def test_a_record_without_proof_is_only_a_claim() -> None:
    assert "no proof" in _reason(authenticate([], TOPIC, VALUE, Keys(), NOW))
    only_key = [(KEY_HEADER, HUB_ID.encode())]
    assert "no proof" in _reason(authenticate(only_key, TOPIC, VALUE, Keys(), NOW))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v, t: (v.replace(b"TNM", b"TLP"), t), "does not match"),  # altered
        (lambda v, t: (v, "other.cdr.submitted"), "does not match"),  # another topic
    ],
)
def test_an_altered_or_moved_record_fails_both_kinds(change, expected) -> None:
    keys = Keys()
    private = _partner(keys, "pk-aaaaaaaaaaaa", TNM)
    for headers in (_hub_headers(), _signed(private, "pk-aaaaaaaaaaaa")):
        value, topic = change(VALUE, TOPIC)
        assert expected in _reason(authenticate(headers, topic, value, keys, NOW))


def test_a_signature_copied_onto_another_record_fails() -> None:
    keys = Keys()
    emp = _partner(keys, "pk-bbbbbbbbbbbb", PartyRef.parse("DE*EMP"))
    genuine = _signed(emp, "pk-bbbbbbbbbbbb", b'{"a":1}')
    assert "does not match" in _reason(authenticate(genuine, TOPIC, VALUE, keys, NOW))


def test_a_partner_key_cannot_speak_for_another_party() -> None:
    keys = Keys()
    emp = _partner(keys, "pk-bbbbbbbbbbbb", PartyRef.parse("DE*EMP"))
    proof = authenticate(_signed(emp, "pk-bbbbbbbbbbbb"), TOPIC, VALUE, keys, NOW)
    assert isinstance(proof, Proof)
    refused = claim_refused(proof, TNM)
    assert refused is not None
    assert "signed with key pk-bbbbbbbbbbbb of DE*EMP but its envelope claims submitter NL*TNM" in (
        _reason(refused)
    )


def test_unknown_and_revoked_keys_are_refused_from_the_revocation_on() -> None:
    keys = Keys()
    private = _partner(keys, "pk-cccccccccccc", TNM, revoked_at=NOW)
    headers = _signed(private, "pk-cccccccccccc")
    before = authenticate(headers, TOPIC, VALUE, keys, NOW - timedelta(seconds=1))
    assert before == Proof("pk-cccccccccccc", TNM)
    assert "revoked at 2026-12-01T00:00:00Z" in _reason(
        authenticate(headers, TOPIC, VALUE, keys, NOW)
    )
    unknown = proof_headers("pk-dddddddddddd", "AAAA")
    assert "not registered" in _reason(authenticate(unknown, TOPIC, VALUE, keys, NOW))
    forged_hub = proof_headers("hub-ffffffffffff", hub_signature(b"x" * 32, TOPIC, "hub-f", VALUE))
    assert "not one of the hub's keys" in _reason(authenticate(forged_hub, TOPIC, VALUE, keys, NOW))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (_hub_headers() + _hub_headers(), "2 roamclear-key headers"),
        ([(KEY_HEADER, None), (SIGNATURE_HEADER, b"AAAA")], "has no value"),
        ([(KEY_HEADER, b"\xff\xfe"), (SIGNATURE_HEADER, b"AAAA")], "not ASCII"),
        ([(KEY_HEADER, HUB_ID.encode()), (SIGNATURE_HEADER, b"%%%")], "not base64url"),
        ([(KEY_HEADER, b"k" * 65), (SIGNATURE_HEADER, b"AAAA")], "too long"),
    ],
)
def test_malformed_proof_headers_are_refused_with_a_reason(headers, expected) -> None:
    assert expected in _reason(authenticate(headers, TOPIC, VALUE, Keys(), NOW))


def test_a_record_without_a_value_can_still_be_proven() -> None:
    headers = _hub_headers(b"")
    assert authenticate(headers, TOPIC, None, Keys(), NOW) == Proof(HUB_ID, None)
