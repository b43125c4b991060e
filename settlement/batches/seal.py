"""The seal on a closed batch: an HMAC only the hub can make, chained per batch key.

Checksum v2 (settlement.batches.checksum) covers every figure a statement shows, but anyone
who can write the tables can recompute it after changing them. The seal cannot be recomputed
without the hub's secret, which is kept outside PostgreSQL (settlement.keys, loaded by
pipeline.hubkeys):

    seal = HMAC-SHA256(statement key, SEAL_LABEL \\n header line \\n totals line
                                      \\n checksum \\n link)

- the statement key is the hub key derived for ``Purpose.STATEMENT_SEAL``; the batch stores
  the id of the key that sealed it (``seal_key_id``), so a rotated key still verifies the
  batches it sealed for as long as it stays among the previous keys;
- header and totals lines come from the stored row, so a seal can be checked against the row
  alone (cheap: no ledger scan), while the checksum ties it to the ledger;
- ``link`` chains the batches of one key (partner account, currency, period kind) in period
  order: ``seal:<hex>`` of the previous batch, ``v1:<checksum>`` when that one was closed
  before sealing, ``-`` for the key's first batch. Deleting or replacing a batch breaks the
  link of the batch after it.

    >>> key = SealKey("hub-test", b"k" * 32)
    >>> chain_link(None)
    '-'
    >>> chain_link(PreviousBatch(2, "c" * 64, "a" * 64))
    'seal:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'

What the seal does not cover (docs/settlement.md, "What the seal protects"): an attacker who
holds the hub key, a rewrite of the ledger before the close, and the deletion of a key's
newest batch (nothing after it carries a link to it).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from settlement.batches.checksum import CHECKSUM_V1, StoredBatch
from settlement.keys import HubKey, HubKeyring, Purpose

SEAL_LABEL: Final = "roamclear statement seal v2"
GENESIS_LINK: Final = "-"


class SealStatus(StrEnum):
    """What a batch's seal says about its stored row and its place in the chain."""

    VALID = "VALID"  # the closer sealed exactly this row after exactly this predecessor
    INVALID = "INVALID"  # a stored figure, the checksum, the seal or the chain was changed
    UNSEALED = "UNSEALED"  # closed before sealing (checksum v1): the ledger check only
    UNKNOWN_KEY = "UNKNOWN_KEY"  # sealed with a key this keyring does not hold: not checked


@dataclass(frozen=True, slots=True)
class SealKey:
    """The key that seals statements (derived from one hub key) and that key's public id."""

    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, key: HubKey) -> SealKey:
        return cls(key.key_id, key.derive(Purpose.STATEMENT_SEAL))


@dataclass(frozen=True, slots=True)
class SealKeys:
    """The current seal key (seals new batches) and the previous ones (still verify)."""

    current: SealKey
    previous: tuple[SealKey, ...] = ()

    @classmethod
    def from_keyring(cls, keyring: HubKeyring) -> SealKeys:
        return cls(SealKey.of(keyring.current), tuple(SealKey.of(k) for k in keyring.previous))

    def find(self, key_id: str) -> SealKey | None:
        for key in (self.current, *self.previous):
            if key.key_id == key_id:
                return key
        return None


@dataclass(frozen=True, slots=True)
class PreviousBatch:
    """The batch before this one in its key's chain, as far as the link needs it."""

    checksum_version: int
    checksum: str
    seal: str | None


def chain_link(previous: PreviousBatch | None) -> str:
    if previous is None:
        return GENESIS_LINK
    if previous.checksum_version == CHECKSUM_V1 or previous.seal is None:
        return f"v1:{previous.checksum}"
    return f"seal:{previous.seal}"


def _message(batch: StoredBatch, checksum: str, link: str) -> bytes:
    return "\n".join(
        (SEAL_LABEL, batch.header_line(), batch.totals_line(), checksum, link)
    ).encode()


def seal(key: SealKey, batch: StoredBatch, checksum: str, link: str) -> str:
    return hmac.new(key.secret, _message(batch, checksum, link), hashlib.sha256).hexdigest()


def seal_matches(key: SealKey, batch: StoredBatch, checksum: str, link: str, found: str) -> bool:
    return hmac.compare_digest(seal(key, batch, checksum, link), found)


@dataclass(frozen=True, slots=True)
class StoredSeal:
    """The seal columns of a batch row (all None on a batch closed before sealing)."""

    checksum_version: int
    checksum: str
    seal: str | None
    seal_key_id: str | None
    seal_link: str | None


@dataclass(frozen=True, slots=True)
class SealCheck:
    status: SealStatus
    differences: tuple[str, ...]


def check_seal(
    batch: StoredBatch,
    stored: StoredSeal,
    previous: PreviousBatch | None,
    first_sealed_id: int | None,
    keys: SealKeys,
) -> SealCheck:
    """Check a stored row's seal and its link to the key's previous batch (no ledger read).

    ``first_sealed_id`` is the lowest id of any sealed batch: every batch closed after it is
    sealed too (migration 0007 refuses to close one unsealed), so an unsealed batch with a
    higher id was rewritten.
    """
    if stored.checksum_version == CHECKSUM_V1:
        if first_sealed_id is not None and batch.batch_id > first_sealed_id:
            return SealCheck(
                SealStatus.INVALID,
                (
                    f"seal: missing, yet batch {first_sealed_id} before it is sealed: every "
                    "batch closed since sealing began is sealed (rewritten as unsealed?)",
                ),
            )
        return SealCheck(SealStatus.UNSEALED, ())
    if stored.seal is None or stored.seal_key_id is None or stored.seal_link is None:
        return SealCheck(SealStatus.INVALID, ("seal: missing on a version 2 batch",))
    key = keys.find(stored.seal_key_id)
    if key is None:
        return SealCheck(
            SealStatus.UNKNOWN_KEY,
            (
                f"seal: made with key {stored.seal_key_id}, which this keyring does not hold "
                "(add the retired key to ROAMCLEAR_HUB_KEYS_PREVIOUS)",
            ),
        )
    differences = []
    expected_link = chain_link(previous)
    if stored.seal_link != expected_link:
        differences.append(
            f"chain: sealed after {stored.seal_link}, but the key's previous batch is now "
            f"{expected_link} (a batch before it was deleted, replaced or inserted)"
        )
    if not seal_matches(key, batch, stored.checksum, stored.seal_link, stored.seal):
        differences.append(
            "seal: does not match the stored row (a stored figure, the checksum or the "
            "chain link was changed after the close)"
        )
    return SealCheck(SealStatus.INVALID if differences else SealStatus.VALID, tuple(differences))
