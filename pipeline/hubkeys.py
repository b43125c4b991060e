"""Loading the hub's secret (settlement.keys) from where the operator keeps it.

In order:
- `ROAMCLEAR_HUB_KEY`: the secret itself, base64url (at least 32 bytes once decoded);
- `ROAMCLEAR_HUB_KEY_FILE`: a file holding it (a mounted Kubernetes secret, say);
- else `<ROAMCLEAR_HOME>/hub.key`, created with a new random secret (mode 0600) on first use,
  so the embedded stack and a laptop work with no set-up.
`ROAMCLEAR_HUB_KEYS_PREVIOUS` (comma-separated, same encoding) lists retired secrets that
still verify: proofs on records in flight during a rotation, seals on older statements.

Every process that writes records for the hub (worker, API, ingest, simulator, retry) or
closes and verifies statements must load the same keyring; never store it in PostgreSQL.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from pipeline.config import Settings
from settlement.batches.seal import SealKeys
from settlement.clearing.proof import hub_signature, proof_headers
from settlement.keys import SECRET_BYTES_MIN, HubKey, HubKeyInvalid, HubKeyring, Purpose

KEY_FILE_NAME = "hub.key"


def generate_secret() -> str:
    """A new hub secret, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES_MIN)).decode().rstrip("=")


def parse_secret(text: str, where: str) -> HubKey:
    stripped = text.strip()
    try:
        secret = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise HubKeyInvalid(f"{where}: not base64url ({exc})") from exc
    try:
        return HubKey.from_secret(secret)
    except HubKeyInvalid as exc:
        raise HubKeyInvalid(f"{where}: {exc}") from exc


def key_file(settings: Settings) -> Path:
    return settings.hub_key_file or settings.home / KEY_FILE_NAME


def _read_or_create(path: Path) -> str:
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate_secret()
    # O_EXCL: two processes starting at once must not each write a different key
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def load_hub_keyring(settings: Settings) -> HubKeyring:
    if settings.hub_key:
        current = parse_secret(settings.hub_key, "ROAMCLEAR_HUB_KEY")
    elif settings.hub_key_file is not None:
        if not settings.hub_key_file.exists():
            raise HubKeyInvalid(f"ROAMCLEAR_HUB_KEY_FILE: {settings.hub_key_file} does not exist")
        current = parse_secret(settings.hub_key_file.read_text(), str(settings.hub_key_file))
    else:
        path = key_file(settings)
        current = parse_secret(_read_or_create(path), str(path))
    previous = tuple(
        parse_secret(text, "ROAMCLEAR_HUB_KEYS_PREVIOUS")
        for text in settings.hub_keys_previous
        if text.strip()
    )
    return HubKeyring(current, previous)


def hub_key_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process (a worker) this process's keyring."""
    keyring = load_hub_keyring(settings)
    env = {"ROAMCLEAR_HUB_KEY": _encode(keyring.current)}
    if keyring.previous:
        env["ROAMCLEAR_HUB_KEYS_PREVIOUS"] = ",".join(_encode(k) for k in keyring.previous)
    return env


def _encode(key: HubKey) -> str:
    return base64.urlsafe_b64encode(key.secret).decode().rstrip("=")


def record_proof_keys(keyring: HubKeyring) -> dict[str, bytes]:
    """Hub key id -> record-proof key, for every key that still verifies."""
    return {key.key_id: key.derive(Purpose.RECORD_PROOF) for key in keyring.verifying()}


class HubSigner:
    """Signs the records the hub writes to cdr.submitted with its current key: the proof
    that the hub vouches for the envelope's submitter (settlement.clearing.proof)."""

    def __init__(self, keyring: HubKeyring) -> None:
        self.key_id = keyring.current.key_id
        self._key = keyring.current.derive(Purpose.RECORD_PROOF)

    def __call__(self, topic: str, value: bytes) -> list[tuple[str, bytes]]:
        return proof_headers(self.key_id, hub_signature(self._key, topic, self.key_id, value))


def hub_signer(settings: Settings) -> HubSigner:
    return HubSigner(load_hub_keyring(settings))


def load_seal_keys(settings: Settings) -> SealKeys:
    """The statement seal keys of this keyring: the closer seals, verify and the API check."""
    return SealKeys.from_keyring(load_hub_keyring(settings))
