"""`loads_exact` (msgspec with a stdlib fallback) must read every input as the stdlib does."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import loads_exact

NUMBER_TEXT = st.from_regex(r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z")
SCALAR = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20), NUMBER_TEXT.map(lambda t: ("number", t))
)


def _render(value: object) -> str:
    if isinstance(value, tuple):
        return str(value[1])
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}: {_render(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


DOCUMENT = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
).map(_render)


def _stdlib(text: str | bytes) -> object:
    return json.loads(text, parse_float=Decimal)


def _same(a: object, b: object) -> bool:
    """Equal, and every Decimal with the same digits (unlike Decimal('1.0') == Decimal('1.00'))."""
    if isinstance(a, Decimal | float) or isinstance(b, Decimal | float):
        return type(a) is type(b) and repr(a) == repr(b)  # NaN is not equal to itself
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(DOCUMENT)
def test_reads_every_document_as_the_stdlib(text: str) -> None:
    expected = _stdlib(text)
    assert _same(loads_exact(text), expected)
    assert _same(loads_exact(text.encode()), expected)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1, "a": 2}',  # the last duplicate wins
        b'["\\ud800"]',  # a lone surrogate escape
        b"[NaN, Infinity]",
        '{"x": 1.50}'.encode("utf-16"),
        b"\xef\xbb\xbf[1.5]",  # UTF-8 byte order mark
        b"[123456789012345678901234567890, 0.10000000000000000001]",
    ],
)
def test_edge_cases_read_as_the_stdlib(text: bytes) -> None:
    assert _same(loads_exact(text), _stdlib(text))


@pytest.mark.parametrize("text", [b"[1,]", b'{"a": 1.}', b'["a\x01"]', b"", b"[01]"])
def test_malformed_text_raises_the_stdlib_error(text: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        loads_exact(text)
    with pytest.raises(json.JSONDecodeError) as expected:
        _stdlib(text)
    assert str(raised.value) == str(expected.value)


def test_invalid_utf8_raises_unicode_decode_error() -> None:
    with pytest.raises(UnicodeDecodeError):
        loads_exact(b'["a\xc3b"]')
