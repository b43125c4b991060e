"""The hub's own secret, as a value: the key behind the proof on records the hub writes and
the seal on settlement statements.

The secret is held outside PostgreSQL (pipeline.hubkeys loads it from the environment or a
file), so someone who can write the tables cannot forge what it proves. Each use gets its own
key derived from the secret (HMAC-SHA256 of the secret over the purpose's name), so a value
made for one purpose can never stand in for another (the record proof, the statement seal,
the encryption of partners' OCPI tokens: settlement.partner_tokens):

    >>> key = HubKey.from_secret(b"0" * 32)
    >>> key.key_id
    'hub-542e3d6b07e4'
    >>> len(key.derive(Purpose.RECORD_PROOF))
    32

Rotation: a keyring holds the current key (signs and seals) and previous keys (still
verify). Statements name the key that sealed them, so old keys stay in the keyring for as
long as their statements must verify.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

SECRET_BYTES_MIN: Final = 32


class Purpose(StrEnum):
    """What a derived key is for (the derivation label)."""

    RECORD_PROOF = "record-proof"  # HMAC on cdr.submitted records the hub itself writes
    STATEMENT_SEAL = "statement-seal"  # HMAC chaining a partner's closed settlement batches
    PARTNER_TOKENS = "partner-tokens"  # AES-GCM on the OCPI tokens the hub calls partners with


class HubKeyInvalid(ValueError):
    """The hub secret is too short or not decodable: set 32 random bytes, base64url-encoded
    (`roamclear config hub-key`; docs/security.md, "The hub key")."""


@dataclass(frozen=True, slots=True)
class HubKey:
    """One hub secret and its public id (a digest: safe to store and print)."""

    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> HubKey:
        if len(secret) < SECRET_BYTES_MIN:
            raise HubKeyInvalid(
                f"the hub secret has {len(secret)} bytes; at least {SECRET_BYTES_MIN} are needed"
            )
        digest = hashlib.sha256(b"roamclear hub key id\n" + secret).hexdigest()
        return cls(key_id=f"hub-{digest[:12]}", secret=secret)

    def derive(self, purpose: Purpose) -> bytes:
        return hmac.new(self.secret, f"roamclear/{purpose.value}".encode(), "sha256").digest()


@dataclass(frozen=True, slots=True)
class HubKeyring:
    """The current hub key and the previous ones that still verify."""

    current: HubKey
    previous: tuple[HubKey, ...] = ()

    def verifying(self) -> tuple[HubKey, ...]:
        return (self.current, *self.previous)

    def find(self, key_id: str) -> HubKey | None:
        for key in self.verifying():
            if key.key_id == key_id:
                return key
        return None
