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


def _canonical_number(value: Decimal) -> str:
    normal = value.normalize()
    return "0" if normal.is_zero() else format(normal, "f")


def _canonical_default(value: object) -> object:
    if isinstance(value, Decimal):
        return _canonical_number(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


# Canonical text by value: equal Decimals (1.0, 1.00, -0) have one canonical form, and a
# stream of CDRs repeats the same few hundred prices and volumes, so each is formatted once.
_CANONICAL_NUMBERS: dict[Decimal, str] = {}
CANONICAL_NUMBERS_MAX: Final = 65_536


def _numbers_only(value: object) -> object:
    if type(value) is Decimal and value.is_finite():
        text = _CANONICAL_NUMBERS.get(value)
        if text is None:
            if len(_CANONICAL_NUMBERS) >= CANONICAL_NUMBERS_MAX:
                _CANONICAL_NUMBERS.clear()
            text = _CANONICAL_NUMBERS[value] = _canonical_number(value)
        return text
    if isinstance(value, Decimal):
        return _canonical_number(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


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


def transaction_id(cdr_key: str, cdr_hash: str) -> uuid.UUID:
    """The transaction of one CDR content: the same input always books the same id."""
    return uuid.uuid5(TRANSACTION_NAMESPACE, f"{cdr_key}|{cdr_hash}")
