"""Partners' OCPI tokens sealed for storage: they open with the key that sealed them (also
after a rotation), for the partner they were sealed for, and nothing else."""

from __future__ import annotations

from dataclasses import replace

import pytest

from settlement.keys import HubKey, HubKeyring, Purpose
from settlement.partner_tokens import PartnerTokenError, SealedToken, seal, unseal

OLD = HubKey.from_secret(b"o" * 32)
NEW = HubKey.from_secret(b"n" * 32)


def test_a_sealed_token_opens_and_shows_nothing_of_itself() -> None:
    ring = HubKeyring(OLD)
    sealed = seal(ring, "NL*TNM", "token-B-0123456789")
    assert sealed.key_id == OLD.key_id and len(sealed.nonce) == 12
    assert b"token-B" not in sealed.ciphertext
    assert "token" not in repr(sealed).lower().replace("sealedtoken", "")
    assert unseal(ring, "NL*TNM", sealed) == "token-B-0123456789"
    assert seal(ring, "NL*TNM", "token-B-0123456789").nonce != sealed.nonce


def test_after_a_rotation_the_previous_key_still_opens_and_new_seals_use_the_new_key() -> None:
    sealed = seal(HubKeyring(OLD), "NL*TNM", "b")
    rotated = HubKeyring(NEW, (OLD,))
    assert unseal(rotated, "NL*TNM", sealed) == "b"
    assert seal(rotated, "NL*TNM", "b").key_id == NEW.key_id
    with pytest.raises(PartnerTokenError, match="not in the keyring"):
        unseal(HubKeyring(NEW), "NL*TNM", sealed)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: replace(s, ciphertext=bytes([s.ciphertext[0] ^ 1]) + s.ciphertext[1:]),
        lambda s: replace(s, nonce=bytes(12)),
    ],
)
def test_an_altered_sealed_token_does_not_open(change: object) -> None:
    ring = HubKeyring(OLD)
    sealed = seal(ring, "NL*TNM", "b")
    assert callable(change)
    altered: SealedToken = change(sealed)
    with pytest.raises(PartnerTokenError, match="does not open"):
        unseal(ring, "NL*TNM", altered)


def test_a_token_copied_to_another_partner_does_not_open() -> None:
    ring = HubKeyring(OLD)
    with pytest.raises(PartnerTokenError, match="another partner"):
        unseal(ring, "DE*OTH", seal(ring, "NL*TNM", "b"))


def test_the_token_key_is_its_own_purpose() -> None:
    keys = {OLD.derive(purpose) for purpose in Purpose}
    assert len(keys) == len(Purpose)
