"""Base classes of every roamclear model, and exact JSON decoding.

Two families share one rule: a JSON number becomes a `Decimal` with exactly the digits that
were sent. pydantic's own JSON parser reads numbers as binary floats first
(`0.10000000000000000001` would arrive as `Decimal("0.1")`), so `model_validate_json` is
overridden to decode with `json.loads(..., parse_float=Decimal)` and then validate the Python
objects, where our number types refuse binary floats outright.

- `OcpiModel`: OCPI wire objects. Frozen, and unknown fields are kept (`extra="allow"`),
  because partners send vendor extensions that must survive a round trip.
- `HubModel`: roamclear's own objects. Frozen, unknown fields are refused.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final, Self, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.config import ExtraValues
from pydantic_core import InitErrorDetails, PydanticCustomError

# msgspec hands each non-integer number's text to the hook, so Decimals get exactly the
# digits sent; it decodes a CDR in about half the time of the stdlib's parser.
_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)


def loads_exact(data: str | bytes | bytearray) -> Any:
    """Decode JSON text with every non-integer number as an exact `Decimal`.

    Raises `json.JSONDecodeError` (with line and column) for malformed text. Whatever msgspec
    refuses goes through the stdlib parser, which either explains the error or accepts what
    the stdlib has always accepted (UTF-16 text, lone surrogate escapes, NaN), so the result
    is the stdlib's `json.loads(data, parse_float=Decimal)` for every input.
    """
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return json.loads(data, parse_float=Decimal)


def json_invalid_error(title: str, data: str | bytes | bytearray) -> ValidationError:
    """The pydantic error pydantic itself raises for malformed JSON, with the decoder's
    message (line and column) as context."""
    try:
        loads_exact(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        message = str(exc)
    else:  # pragma: no cover - only called after a decode failure
        message = "invalid JSON"
    detail: InitErrorDetails = {
        "type": "json_invalid",
        "loc": (),
        "input": data,
        "ctx": {"error": message},
    }
    return ValidationError.from_exception_data(title, [detail])


class _ExactJsonModel(BaseModel):
    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """Validate JSON text, reading numbers as exact Decimals (see the module docstring)."""
        try:
            data = loads_exact(json_data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise json_invalid_error(cls.__name__, json_data) from None
        return cls.model_validate(
            data,
            strict=strict,
            extra=extra,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )


ModelT = TypeVar("ModelT", bound=BaseModel)
_set_attribute: Final = object.__setattr__  # frozen models refuse their own __setattr__


class OcpiModel(_ExactJsonModel):
    """An OCPI object as exchanged with partners: frozen, extension fields kept."""

    model_config = ConfigDict(frozen=True, extra="allow", use_enum_values=False)


class HubModel(_ExactJsonModel):
    """A roamclear object: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def trusted(
    cls: type[ModelT], values: dict[str, Any], fields_set: set[str] | None = None
) -> ModelT:
    """An instance of `cls` from values that are valid by construction, without validation:
    `model_construct` in one step (a tenth of its cost, which reads aliases and defaults).
    `values` holds every field, in declaration order; `fields_set` the ones given
    explicitly (default: all). For models without extra fields or private attributes; a
    test holds the result equal to `model_validate`'s."""
    model = cls.__new__(cls)
    _set_attribute(model, "__dict__", values)
    _set_attribute(
        model, "__pydantic_fields_set__", set(values) if fields_set is None else fields_set
    )
    _set_attribute(model, "__pydantic_extra__", None)
    _set_attribute(model, "__pydantic_private__", None)
    return model


def rule_error(field: str, code: str, message: str) -> PydanticCustomError:
    """An error for a rule across fields, raised by a model validator.

    pydantic places a model validator's error at the model itself; `field` (a dotted path
    relative to the model) travels in the context so that `schemas.validation` can report
    the violation at the field an operator has to fix.
    """
    return PydanticCustomError(code, message, {"field": field})
