"""Identity of a CDR: canonical key, content hash, deterministic transaction ids.

Two submissions are the same CDR when their canonical keys are equal; they are an exact
duplicate when their content hashes are equal too. The hash is taken over the parsed CDR in
a canonical form (sorted keys, numbers normalised: `4.0` and `4.00` are the same value), so
re-serialising a CDR with other whitespace or key order is still an exact duplicate.

    >>> transaction_id("NL*TNM*CDR1", "ab" * 32)
    UUID('3767524e-38df-5ca7-a3d4-b2824cf7cf84')
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Final

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.types import format_datetime

# Namespace of roamclear's uuid5 transaction ids (fixed forever: ids must be reproducible).
TRANSACTION_NAMESPACE: Final = uuid.UUID("6f1f2a8e-2b8e-4d1b-9a63-6c1f3f0b9c41")


def _canonical(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_canonical(item) for item in value]
    if isinstance(value, Decimal):
        normal = value.normalize()
        return format(normal, "f") if normal != 0 else "0"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Enum):
        return _canonical(value.value)
    return value


def content_hash(cdr: Cdr) -> str:
    """sha256 over the CDR's canonical JSON (independent of formatting and key order)."""
    canonical = _canonical(cdr.model_dump(mode="python"))
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def transaction_id(cdr_key: str, cdr_hash: str) -> uuid.UUID:
    """The transaction of one CDR content: the same input always books the same id."""
    return uuid.uuid5(TRANSACTION_NAMESPACE, f"{cdr_key}|{cdr_hash}")
