"""A session's identity, and what a session document must be for the hub to keep it.

A session is identified by its CPO's country code and party id and its own id, all
CiStrings (case-insensitive), so its key is upper case: `NL*TNM*SES-0001`. The hub keeps a
session as the document the CPO sent (unknown fields too, numbers exact); the document must
also be storable as PostgreSQL jsonb and writable as JSON again, which OCPI's own schema does
not promise for the fields it does not know:

    {"id": "S1", "note": "a\\u0000b"}          note: must not contain the NUL character
    {"id": "S1", "x": 1e200000}               x: a number beyond what the hub stores
    {"id": "S1", "x": 123456789012345678901}  x: an integer beyond 64 bits

`unstorable(document)` lists each such place, with its JSON path, as a `Violation`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from schemas.hub.party import SEPARATOR, PartyRef
from schemas.validation import Violation

# PostgreSQL's numeric keeps at most 131,072 digits before the point and 16,383 after it;
# the hub stays far inside both, and no OCPI quantity comes near.
NUMBER_EXPONENT_MAX: Final = 1_000
INTEGER_MAX: Final = 2**63 - 1  # orjson writes 64-bit integers only
DEPTH_MAX: Final = 64  # nesting of a session document (OCPI's own is 4 deep)


def session_key(party: PartyRef, session_id: str) -> str:
    """`NL*TNM*SES-0001`: the party's reference and the id, upper case."""
    return f"{party}{SEPARATOR}{session_id.upper()}"


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain the NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (a lone surrogate escape is not)"
    return None


def _leaf_problem(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, int):
        return None if -INTEGER_MAX - 1 <= value <= INTEGER_MAX else "an integer beyond 64 bits"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "must be a finite number"
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if (value and abs(value.adjusted()) > NUMBER_EXPONENT_MAX) or (
            exponent < -NUMBER_EXPONENT_MAX
        ):
            return "a number beyond what the hub stores"
        return None
    return "must be a JSON number, text, true, false, null, object or array"  # NaN, Infinity


def unstorable(document: Any, root: str = "") -> tuple[Violation, ...]:
    """Every place in a decoded JSON document the hub cannot store or write back exactly."""
    found: list[Violation] = []
    stack: list[tuple[str, Any, int]] = [(root, document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > DEPTH_MAX:
            found.append(Violation(path=path or "$", rule="nested too deeply", code="depth"))
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                key_problem = _text_problem(key)
                if key_problem is not None:
                    shown = (
                        key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
                    )
                    rule = f"a field name {key_problem}"
                    found.append(Violation(path=_path(path, shown), rule=rule, code="unstorable"))
                    continue
                stack.append((_path(path, key), item, depth + 1))
        elif isinstance(value, list):
            stack.extend((_path(path, index), item, depth + 1) for index, item in enumerate(value))
        else:
            problem = _leaf_problem(value)
            if problem is not None:
                found.append(Violation(path=path or "$", rule=problem, code="unstorable"))
    return tuple(sorted(found, key=lambda v: v.path))
