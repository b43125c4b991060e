"""The OCPI tokens the hub calls partners with, sealed for storage.

A token the hub issues is stored as its sha256 (settlement.store.ocpi_tokens): the hub only
has to recognise it. A token a partner issues to the hub (its credentials token B, or C when
the hub started the handshake) is different: the hub must send it back in every call it makes
to that partner, so it has to be recoverable. It is sealed with AES-256-GCM under a key
derived from the hub key (`Purpose.PARTNER_TOKENS`), and the sealed value names the hub key
that sealed it, so a rotated hub key (kept in `ROAMCLEAR_HUB_KEYS_PREVIOUS`) still opens it.
The partner's reference is authenticated with it (GCM's associated data): a sealed token
copied onto another partner's row does not open.

    >>> from settlement.keys import HubKey, HubKeyring
    >>> ring = HubKeyring(HubKey.from_secret(b"k" * 32))
    >>> sealed = seal(ring, "NL*TNM", "partner-token-b")
    >>> unseal(ring, "NL*TNM", sealed)
    'partner-token-b'
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from settlement.keys import HubKeyring, Purpose

NONCE_BYTES: Final = 12  # GCM's standard nonce; random per seal (a few seals per partner)
TOKEN_BYTES_MAX: Final = 256  # OCPI's token is string(64); a margin for 2.1.1 partners
_CONTEXT: Final = b"roamclear partner token v1\n"


class PartnerTokenError(Exception):
    """A sealed partner token cannot be opened. Either the hub key that sealed it is not in
    the keyring (put the retired key in ROAMCLEAR_HUB_KEYS_PREVIOUS, docs/security.md "The hub
    key"), or the row was altered or copied from another partner: register the partner
    again (a credentials PUT or `partners connect`) so the hub stores a fresh token."""


@dataclass(frozen=True, slots=True)
class SealedToken:
    """A partner's token as stored: which hub key sealed it, the nonce, the ciphertext (with
    GCM's 16-byte tag)."""

    key_id: str
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def _associated(partner: str) -> bytes:
    return _CONTEXT + partner.encode("ascii")


def seal(keyring: HubKeyring, partner: str, token: str) -> SealedToken:
    """Seal `partner`'s token under the keyring's current hub key."""
    plain = token.encode("ascii")
    assert 0 < len(plain) <= TOKEN_BYTES_MAX, "validated before it is stored"
    key = keyring.current
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key.derive(Purpose.PARTNER_TOKENS)).encrypt(
        nonce, plain, _associated(partner)
    )
    return SealedToken(key.key_id, nonce, ciphertext)


def unseal(keyring: HubKeyring, partner: str, sealed: SealedToken) -> str:
    """The token, or PartnerTokenError."""
    key = keyring.find(sealed.key_id)
    if key is None:
        raise PartnerTokenError(
            f"{partner}'s token was sealed with hub key {sealed.key_id}, which is not in the "
            "keyring (ROAMCLEAR_HUB_KEYS_PREVIOUS)"
        )
    try:
        plain = AESGCM(key.derive(Purpose.PARTNER_TOKENS)).decrypt(
            sealed.nonce, sealed.ciphertext, _associated(partner)
        )
    except InvalidTag:
        raise PartnerTokenError(
            f"{partner}'s sealed token does not open: altered, or sealed for another partner"
        ) from None
    return plain.decode("ascii")
