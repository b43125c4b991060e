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
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Final

import orjson
from pydantic import BaseModel

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.types import format_datetime

# Namespace of roamclear's uuid5 transaction ids (fixed forever: ids must be reproducible).
TRANSACTION_NAMESPACE: Final = uuid.UUID("6f1f2a8e-2b8e-4d1b-9a63-6c1f3f0b9c41")


def _numbers_only(value: object) -> object:
    """A number's canonical text (`4.0` and `4.00` are `4`); computed for each number, as
    hashing a new Decimal to look its text up would cost as much."""
    if isinstance(value, Decimal):
        normal = value.normalize()
        return "0" if normal.is_zero() else format(normal, "f")
    raise TypeError(f"cannot hash {type(value).__name__}")


def _canonical_default(value: object) -> object:
    if isinstance(value, datetime):
        return format_datetime(value)
    return _numbers_only(value)


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
# orjson's own datetimes: `2015-06-29T20:39:09Z` for a UTC time on the whole second, which is
# exactly what `format_datetime` writes for it
_WHOLE_SECONDS_UTC = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
# a time of day not written as whole seconds in UTC (sub-second digits, which orjson always
# writes as six and `format_datetime` as three when it can, an offset, or no zone at all)
_OTHER_TIME = re.compile(rb"T\d\d:\d\d:\d\d(?!Z\")")


def _canonical(data: object) -> bytes:
    # orjson writes nearly every CDR's times itself (one Python call per time less); only
    # when a time is not plain whole-second UTC does the slower path format them all
    fast = orjson.dumps(data, default=_numbers_only, option=_WHOLE_SECONDS_UTC)
    if _OTHER_TIME.search(fast) is None:
        return fast
    return orjson.dumps(data, default=_canonical_default, option=_CANONICAL)


# The canonical text of a location or a tariff, by object: the fast decoder hands every CDR
# holding the same location (tariff) text the same object, so each is written once. The
# entry holds its object, so its id is not reused while it is here.
_FRAGMENTS: dict[int, tuple[BaseModel, orjson.Fragment]] = {}
FRAGMENTS_MAX: Final = 8_192


def _fragment(model: BaseModel) -> orjson.Fragment:
    held = _FRAGMENTS.get(id(model))
    if held is not None and held[0] is model:
        return held[1]
    fragment = orjson.Fragment(_canonical(model.model_dump(mode="python", exclude_none=True)))
    if len(_FRAGMENTS) >= FRAGMENTS_MAX:
        _FRAGMENTS.clear()
    _FRAGMENTS[id(model)] = (model, fragment)
    return fragment


def canonical_json(cdr: Cdr) -> bytes:
    """The CDR as hashed: keys sorted, absent and null fields alike, numbers normalised,
    times as `format_datetime` writes them."""
    data = cdr.model_dump(mode="python", exclude_none=True, exclude={"cdr_location", "tariffs"})
    # a nested model's canonical text is its own (same keys, same values), written verbatim
    data["cdr_location"] = _fragment(cdr.cdr_location)
    data["tariffs"] = [_fragment(tariff) for tariff in cdr.tariffs]
    return _canonical(data)


def content_hash(cdr: Cdr) -> str:
    """sha256 over the CDR's canonical JSON: keys sorted, absent and null fields alike,
    numbers normalised (independent of formatting, key order and trailing zeros)."""
    return hashlib.sha256(canonical_json(cdr)).hexdigest()


_NAMESPACE_BYTES: Final = TRANSACTION_NAMESPACE.bytes
# RFC 9562's version 5 and variant bits, as `uuid.UUID(bytes=..., version=5)` sets them
_VERSION_CLEAR: Final = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_5: Final = (0x8000 << 48) | (5 << 76)


def _transaction_number(cdr_key: str, cdr_hash: str) -> int:
    """`uuid.uuid5(TRANSACTION_NAMESPACE, f"{cdr_key}|{cdr_hash}").int`, without the UUID."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + f"{cdr_key}|{cdr_hash}".encode()).digest()
    return int.from_bytes(digest[:16], "big") & _VERSION_CLEAR | _VERSION_5


def transaction_id(cdr_key: str, cdr_hash: str) -> uuid.UUID:
    """The transaction of one CDR content: the same input always books the same id."""
    return uuid.UUID(int=_transaction_number(cdr_key, cdr_hash))


def transaction_id_text(cdr_key: str, cdr_hash: str) -> str:
    """`str(transaction_id(...))`: the ledger's form, written straight from the digest (one
    per booked CDR)."""
    digits = f"{_transaction_number(cdr_key, cdr_hash):032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
