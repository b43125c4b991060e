"""Precise, complete validation errors: every violation of an input, each with its path.

A partner's bad CDR is not an exception in roamclear's sense; it becomes a rejection that
lists every problem at once, each as a `Violation`::

    charging_periods[2].dimensions[0].volume: must be >= 0
    cdr_token.uid: at most 36 characters
    auth_method: must be one of: AUTH_REQUEST, COMMAND, WHITELIST

`path` is `$` for the document itself (e.g. malformed JSON). `code` is machine-readable
(pydantic's error type, or our own such as `float_refused`, `date_order`). Rules that
relate several fields (e.g. `end_date_time` before `start_date_time`) are checked only once
every field is individually valid, so they appear in a second round of fixes.

`parse_cdr`, `parse_tariff`, `parse_location`, `parse_session`, `parse_token` and
`parse_agreement` accept JSON bytes or text or an already decoded mapping (decoded with
`schemas.base.loads_exact`: binary floats are refused) and raise `SchemaInvalid`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from schemas.base import HubModel
from schemas.hub.agreement import Agreement
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.location import Location
from schemas.ocpi.session import Session
from schemas.ocpi.tariff import Tariff
from schemas.ocpi.token import Token
from schemas.ocpi.types import PATTERN_RULES

ModelT = TypeVar("ModelT", bound=BaseModel)
RawInput = bytes | bytearray | str | Mapping[str, Any]

_DATETIME_RULE = "must be an RFC 3339 date-time with offset, e.g. 2015-06-29T20:39:09Z"

# Rule sentences by pydantic error type; `{name}` is filled from the error's context.
_RULES: dict[str, str] = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
    "string_too_long": "at most {max_length} characters",
    "string_too_short": "at least {min_length} characters",
    "string_type": "must be a string",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "decimal_max_places": "at most {decimal_places} decimals",
    "decimal_max_digits": "at most {max_digits} digits",
    "decimal_whole_digits": "at most {whole_digits} digits before the decimal point",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "datetime_type": _DATETIME_RULE,
    "datetime_parsing": _DATETIME_RULE,
    "datetime_from_date_parsing": _DATETIME_RULE,
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
    "uuid_type": "must be a UUID",
    "uuid_parsing": "must be a UUID",
    "literal_error": "must be {expected}",
    "json_invalid": "invalid JSON: {error}",
}


class SchemasError(Exception):
    """Root of the exceptions raised by `schemas`."""


class Violation(HubModel):
    """One problem with an input: where (`path`), what is wrong (`rule`), and a code."""

    path: str
    rule: str
    code: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}"


class SchemaInvalid(SchemasError):
    """An input does not conform to its schema. Every violation is in `violations`.

    Operators: the input is rejected as a whole (dead-lettered with reason `schema_invalid`);
    send the listed paths back to the partner to fix.
    """

    def __init__(self, model_name: str, violations: Sequence[Violation]) -> None:
        assert violations, "SchemaInvalid needs at least one violation"
        self.model_name = model_name
        self.violations: tuple[Violation, ...] = tuple(violations)
        super().__init__(f"invalid {model_name}: {len(self.violations)} violation(s)")

    def as_text(self) -> str:
        """One line per violation: `path: rule`."""
        return "\n".join(str(violation) for violation in self.violations)

    def as_json(self) -> list[dict[str, str]]:
        """The violations as `[{"path": ..., "rule": ..., "code": ...}, ...]`."""
        return [violation.model_dump() for violation in self.violations]


def render_path(loc: Sequence[int | str]) -> str:
    """`("charging_periods", 2, "volume")` -> `charging_periods[2].volume`; `()` -> `$`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "$"


def _enum_rule(context: Mapping[str, Any]) -> str:
    expected = str(context.get("expected", ""))
    values = re.findall(r"'([^']*)'", expected)
    return "must be one of: " + ", ".join(values)


def _rule(error: ErrorDetails) -> str:
    kind = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    if "field" in context:  # our own cross-field rules carry their sentence
        return error["msg"]
    if kind == "enum":
        return _enum_rule(context)
    if kind == "string_pattern_mismatch":
        return PATTERN_RULES.get(str(context.get("pattern")), "has an invalid format")
    if kind == "too_short":
        minimum = context.get("min_length", 1)
        return "must have at least one element" if minimum == 1 else f"at least {minimum} elements"
    if kind == "too_long":
        return f"at most {context.get('max_length')} elements"
    template = _RULES.get(kind)
    if template is None:
        return error["msg"]
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return error["msg"]


def violations_from(exc: ValidationError) -> tuple[Violation, ...]:
    """Every error of a pydantic ValidationError as a Violation, in pydantic's order."""
    violations = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        context: Mapping[str, Any] = error.get("ctx") or {}
        field = context.get("field")
        if isinstance(field, str):
            loc.extend(int(part) if part.isdigit() else part for part in field.split("."))
        violations.append(Violation(path=render_path(loc), rule=_rule(error), code=error["type"]))
    return tuple(violations)


def parse_model(model: type[ModelT], raw: RawInput) -> ModelT:
    """Validate JSON (bytes or text) or a decoded mapping as `model`; raise SchemaInvalid."""
    try:
        if isinstance(raw, bytes | bytearray | str):
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        raise SchemaInvalid(model.__name__, violations_from(exc)) from None


def parse_cdr(raw: RawInput) -> Cdr:
    """An OCPI 2.2.1 CDR, or SchemaInvalid with every violation."""
    return parse_model(Cdr, raw)


def parse_tariff(raw: RawInput) -> Tariff:
    """An OCPI 2.2.1 Tariff, or SchemaInvalid with every violation."""
    return parse_model(Tariff, raw)


def parse_location(raw: RawInput) -> Location:
    """An OCPI 2.2.1 Location, or SchemaInvalid with every violation."""
    return parse_model(Location, raw)


def parse_session(raw: RawInput) -> Session:
    """An OCPI 2.2.1 Session, or SchemaInvalid with every violation."""
    return parse_model(Session, raw)


def parse_token(raw: RawInput) -> Token:
    """An OCPI 2.2.1 Token, or SchemaInvalid with every violation."""
    return parse_model(Token, raw)


def parse_agreement(raw: RawInput) -> Agreement:
    """A roaming Agreement, or SchemaInvalid with every violation."""
    return parse_model(Agreement, raw)
