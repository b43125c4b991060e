"""Writing models as JSON with exact numbers: `to_ocpi_json(model) -> bytes`.

pydantic writes a `Decimal` as a JSON string, and the stdlib and orjson can only write it
through a float. OCPI wants JSON numbers, and roamclear wants the digits it computed, so this
module has its own small encoder: a `Decimal` is written as its digits in positional
notation (`Decimal("4.40")` -> `4.40`, `Decimal("1E-7")` -> `0.0000001`), a datetime as RFC 3339
UTC with `Z`, enums as their values. Fields that are `None` are left out, as OCPI omits
absent optional fields. Output is compact UTF-8, keys in model field order.

Round trip: `Cdr.model_validate_json(to_ocpi_json(cdr)) == cdr`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from uuid import UUID

from pydantic import BaseModel

from schemas.ocpi.types import format_datetime


def to_ocpi_json(model: BaseModel) -> bytes:
    """The model as OCPI JSON (works for every roamclear model, envelopes included)."""
    data = model.model_dump(mode="python", exclude_none=True)
    return encode_json(data).encode("utf-8")


def encode_json(value: object) -> str:
    """Encode plain Python data (dicts, lists, tuples, str, int, bool, None, Decimal,
    datetime, UUID, Enum) as compact JSON, Decimals as exact JSON numbers."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: object, parts: list[str]) -> None:
    if value is None or isinstance(value, bool | int | str):
        # StrEnum members are str: json.dumps writes their value.
        parts.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as a JSON number")
        parts.append(format(value, "f"))
    elif isinstance(value, datetime):
        parts.append(json.dumps(format_datetime(value)))
    elif isinstance(value, UUID):
        parts.append(f'"{value}"')
    elif isinstance(value, Enum):
        _encode(value.value, parts)
    elif isinstance(value, Mapping):
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                parts.append(",")
            parts.append(json.dumps(str(key), ensure_ascii=False))
            parts.append(":")
            _encode(item, parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
