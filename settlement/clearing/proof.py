"""Proof of who submitted a cdr.submitted record. The envelope's `submitter` is a claim.

A proof travels in two Kafka record headers, so it works on any Kafka-protocol broker
(Apache Kafka, the embedded one, managed services) without ACLs or one topic per partner:

    roamclear-key        the key id, ASCII: `hub-3f2a9c1b7d00` or `pk-5b0e6f1a2c3d`
    roamclear-signature  base64url of the signature over `signed_message(topic, key, value)`

The signature covers the topic, the key id and the record's value, byte for byte (the whole
envelope: event id, submitter and CDR). The record's Kafka key and other headers are not
covered: the key is not trusted anyway (clearing re-keys by the canonical CDR key).

Two kinds of key:
- **hub** keys (`hub-…`): HMAC-SHA256 with the hub's record-proof key (settlement.keys).
  Records the hub writes itself carry it (file ingest, simulator, `rejected retry`, the OCPI
  receiver): the hub vouches for the envelope's submitter, whom it authenticated its own way
  (an OCPI token, an operator at the command line).
- **partner** keys (`pk-…`): Ed25519, registered per partner with `roamclear partners keys`
  (the hub stores only the public key, so reading PostgreSQL is not enough to forge one). The
  proven party must be the envelope's submitter. A key is refused from its revocation on.

What a valid proof rules out: a producer without the key writing in a partner's name, and a
signed record altered, moved to another topic, or relabelled with another key or submitter.
A byte-for-byte copy of a signed record stays valid: it is the same event, and ends as an
exact duplicate (no effect on the books).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.hub.party import PartyRef
from settlement.clearing.outcome import Rejected
from settlement.clearing.reasons import Reason, Stage

KEY_HEADER: Final = "roamclear-key"
SIGNATURE_HEADER: Final = "roamclear-signature"
HUB_KEY_PREFIX: Final = "hub-"
PARTNER_KEY_PREFIX: Final = "pk-"
SIGNATURE_VERSION: Final = b"roamclear-proof-v1"
KEY_ID_CHARS_MAX: Final = 64
SIGNATURE_CHARS_MAX: Final = 128  # an Ed25519 signature is 86 characters, an HMAC 43


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A partner's registered public key (Ed25519, raw 32 bytes)."""

    key_id: str
    party: PartyRef
    public_key: bytes
    revoked_at: datetime | None = None

    def revoked(self, at: datetime) -> bool:
        return self.revoked_at is not None and self.revoked_at <= at


class ProofKeys(Protocol):
    """The keys a proof is checked against."""

    def hub_key(self, key_id: str) -> bytes | None:
        """The derived record-proof key of a hub key id (current or previous)."""
        ...

    def partner_key(self, key_id: str) -> PartnerKey | None: ...


@dataclass(frozen=True, slots=True)
class Proof:
    """A valid proof: the key that made it and the party it proves (None: the hub vouches
    for the envelope's submitter)."""

    key_id: str
    party: PartyRef | None


def signed_message(topic: str, key_id: str, value: bytes) -> bytes:
    """What a signature covers: a version tag, the topic, the key id and the value."""
    return b"\n".join((SIGNATURE_VERSION, topic.encode(), key_id.encode(), value))


def hub_signature(proof_key: bytes, topic: str, key_id: str, value: bytes) -> str:
    """The hub's signature of a record, base64url without padding."""
    digest = hmac.digest(proof_key, signed_message(topic, key_id, value), "sha256")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def proof_headers(key_id: str, signature: str) -> list[tuple[str, bytes]]:
    return [(KEY_HEADER, key_id.encode()), (SIGNATURE_HEADER, signature.encode())]


def _unauthenticated(message: str) -> Rejected:
    return Rejected(Reason.UNAUTHENTICATED_SUBMITTER, Stage.AUTHENTICATE, message)


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> bytes | str | None:
    """The one value of header `name`; a str says what is wrong with it."""
    values = [value for key, value in headers if key == name]
    if not values:
        return None
    if len(values) > 1:
        return f"the record carries {len(values)} {name} headers; a proof has exactly one"
    value = values[0]
    if value is None:
        return f"the {name} header has no value"
    return value


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def _decode_signature(text: bytes) -> bytes | None:
    stripped = text.strip().rstrip(b"=")
    try:
        # validate=True: the lenient decoder would drop stray characters silently
        return base64.b64decode(stripped + b"=" * (-len(stripped) % 4), b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None


def authenticate(
    headers: Sequence[tuple[str, bytes | None]],
    topic: str,
    value: bytes | None,
    keys: ProofKeys,
    now: datetime,
) -> Proof | Rejected:
    """The record's proof, or a rejection saying why there is none (`unauthenticated_submitter`)."""
    key_value = _header(headers, KEY_HEADER)
    signature_value = _header(headers, SIGNATURE_HEADER)
    for problem in (key_value, signature_value):
        if isinstance(problem, str):
            return _unauthenticated(problem)
    if key_value is None or signature_value is None:
        return _unauthenticated(
            f"the record carries no proof of its submitter (headers {KEY_HEADER} and "
            f"{SIGNATURE_HEADER}): the envelope's submitter is only a claim"
        )
    assert isinstance(key_value, bytes) and isinstance(signature_value, bytes)
    if len(key_value) > KEY_ID_CHARS_MAX or len(signature_value) > SIGNATURE_CHARS_MAX:
        return _unauthenticated(f"the {KEY_HEADER} or {SIGNATURE_HEADER} header is too long")
    try:
        key_id = key_value.decode("ascii")
    except UnicodeDecodeError:
        return _unauthenticated(f"the {KEY_HEADER} header is not ASCII")
    signature = _decode_signature(signature_value)
    if signature is None:
        return _unauthenticated(f"the {SIGNATURE_HEADER} header is not base64url")
    message = signed_message(topic, key_id, value or b"")
    if key_id.startswith(HUB_KEY_PREFIX):
        hub_key = keys.hub_key(key_id)
        if hub_key is None:
            return _unauthenticated(f"key {key_id} is not one of the hub's keys")
        expected = hmac.digest(hub_key, message, "sha256")
        if not hmac.compare_digest(expected, signature):
            return _bad_signature(key_id)
        return Proof(key_id, None)
    partner_key = keys.partner_key(key_id)
    if partner_key is None:
        return _unauthenticated(f"key {key_id} is not registered (roamclear partners keys list)")
    if partner_key.revoked(now):
        return _unauthenticated(
            f"key {key_id} of {partner_key.party} was revoked at "
            f"{partner_key.revoked_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    try:
        _public_key(partner_key.public_key).verify(signature, message)
    except InvalidSignature:
        return _bad_signature(key_id)
    return Proof(key_id, partner_key.party)


def _bad_signature(key_id: str) -> Rejected:
    return _unauthenticated(
        f"the signature made with key {key_id} does not match this record: it was altered, "
        "signed for another topic, or the signature belongs to another record"
    )


def claim_refused(proof: Proof, claimed: PartyRef) -> Rejected | None:
    """A partner proof for one party on an envelope claiming another is no proof."""
    if proof.party is None or proof.party == claimed:
        return None
    return _unauthenticated(
        f"the record is signed with key {proof.key_id} of {proof.party} but its envelope "
        f"claims submitter {claimed}"
    )
