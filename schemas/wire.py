"""Writing models as JSON with exact numbers: `to_ocpi_json(model) -> bytes`.

pydantic writes a `Decimal` as a JSON string, and the stdlib and orjson can only write it
through a float. OCPI wants JSON numbers, and roamclear wants the digits it computed, so this
module hands orjson each `Decimal` as a verbatim fragment: its digits in positional
notation (`Decimal("4.40")` -> `4.40`, `Decimal("1E-7")` -> `0.0000001`), a datetime as RFC 3339
UTC with `Z`, enums as their values. Fields that are `None` are left out, as OCPI omits
absent optional fields. Output is compact UTF-8, keys in model field order.

Round trip: `Cdr.model_validate_json(to_ocpi_json(cdr)) == cdr`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson
from pydantic import BaseModel

from schemas.ocpi.types import format_datetime


def to_ocpi_json(model: BaseModel) -> bytes:
    """The model as OCPI JSON (works for every roamclear model, envelopes included)."""
    return encode_json_bytes(model.model_dump(mode="python", exclude_none=True))


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as a JSON number")
        # a Fragment is written verbatim: the Decimal's own digits, never through a float
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# datetimes go through `format_datetime` (RFC 3339, UTC, "Z"), not orjson's own format
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def encode_json_bytes(value: object) -> bytes:
    """Encode plain Python data (dicts, lists, tuples, str, int, bool, None, Decimal,
    datetime, UUID, Enum) as compact UTF-8 JSON, Decimals as exact JSON numbers."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def encode_json(value: object) -> str:
    """`encode_json_bytes` as text."""
    return encode_json_bytes(value).decode("utf-8")
