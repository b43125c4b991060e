"""Hypothesis strategies and checks for fuzzing the hub's OCPI endpoints
(tests/integration/ocpi/test_fuzz.py).

    bodies(sample_tariff)   bytes a partner might send where a Tariff is expected: the valid
                            one, mutated ones (fields removed, retyped, added; odd numbers
                            and text), other JSON, JSON the hub may not read, and junk
    segments(["AC-1"])      a URL path segment: a known id or odd text (unicode, NUL, `?`…)
    bad_authorizations()    Authorization headers that name no usable token

    kept(conn, request_id)  what the receipt tables hold for one request (the hub echoes the
                            request id it used, so this finds the request's rows and only them)
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

import httpx
import psycopg
from hypothesis import strategies as st

from schemas.base import loads_exact
from schemas.wire import encode_json_bytes
from settlement.clearing.decode import NotJson, read_json
from settlement.store.db import Row

ID_CHARS_MAX: Final = 64  # pipeline.ocpi.request_ids keeps a sent X-Request-ID up to this

# Numbers and text that break naive code: exponents, 400-digit integers, surrogate-free
# unicode of every plane, NUL, JSON's own escapes.
ODD_SCALARS: Final = st.one_of(
    st.sampled_from(
        [
            Decimal("1E+400"),
            Decimal("-1E-400"),
            Decimal("0.00000000000000000000000001"),
            Decimal("123456789012345678901234567890.5"),
            Decimal(2**64),  # as a Decimal: orjson writes ints of 64 bits at most
            Decimal(-(2**63) - 1),
            "",
            "\u0000",
            "a\u0000b",
            "\u202e\ufeff\U0001f50c",
            "x" * 5000,
            '"}]\\',
            "2026-13-45T25:61:61Z",
        ]
    ),
    st.text(max_size=60),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.decimals(allow_nan=False, allow_infinity=False, places=6),
)
SCALARS: Final = st.one_of(st.none(), st.booleans(), ODD_SCALARS)
JSON_VALUES: Final = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)

# Text that is JSON to some parsers and not to others, spliced in for a value of the document.
UNREADABLE_VALUES: Final = (
    b"NaN",
    b"-Infinity",
    b"1e99999",
    b"9" * 5000,  # beyond Python's int-from-text limit (4,300 digits)
    b'"\\ud800"',  # a lone surrogate escape
    b'"\\u0000"',
    b"[" * 300 + b"]" * 300,  # deeper than any OCPI object
)


def _places(document: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside `document`, depth first."""
    found: list[tuple[Any, Any]] = []
    pending = [document]
    while pending:
        container = pending.pop()
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        for key in list(keys):
            found.append((container, key))
            if isinstance(container[key], dict | list):
                pending.append(container[key])
    return found


@st.composite
def mutated(
    draw: st.DrawFn, document: dict[str, Any], frozen: Sequence[str] = ()
) -> dict[str, Any]:
    """`document` with up to four changes: a value removed, replaced by any JSON value (wrong
    types, odd numbers and text) or a field added; top-level `frozen` fields stay as they are."""
    changed = copy.deepcopy(document)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        places = [(c, k) for c, k in _places(changed) if not (c is changed and k in frozen)]
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["remove", "replace", "add"]))
        if action == "remove":
            del container[key]
        elif action == "replace":
            container[key] = draw(JSON_VALUES)
        elif isinstance(container, dict):
            container[draw(st.text(min_size=1, max_size=20))] = draw(JSON_VALUES)
        else:
            container.append(draw(JSON_VALUES))
    return changed


@st.composite
def _spliced(draw: st.DrawFn, document: dict[str, Any]) -> bytes:
    """The document as JSON text with one scalar value replaced by text from
    `UNREADABLE_VALUES` (NaN, a 5,000-digit integer, a lone surrogate, deep nesting)."""
    marker = "\u2063fuzz-splice\u2063"
    changed = copy.deepcopy(document)
    scalars = [(c, k) for c, k in _places(changed) if not isinstance(c[k], dict | list)]
    container, key = draw(st.sampled_from(scalars))
    container[key] = marker
    text = encode_json_bytes(changed)
    return text.replace(encode_json_bytes(marker), draw(st.sampled_from(UNREADABLE_VALUES)), 1)


def bodies(document: dict[str, Any], frozen: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """Request bodies around a valid `document`, as bytes on the wire."""
    valid = encode_json_bytes(document)
    return st.one_of(
        st.just(valid),
        mutated(document, frozen).map(encode_json_bytes),
        JSON_VALUES.map(encode_json_bytes),
        _spliced(document),
        st.integers(min_value=1, max_value=len(valid) - 1).map(lambda n: valid[:n]),  # cut off
        st.just(b"\xef\xbb\xbf" + valid),  # a UTF-8 byte order mark
        st.just(json.dumps(document, default=str).encode("utf-16")),
        st.binary(max_size=64),
        st.just(b""),
    )


def hub_reads(body: bytes) -> bool | None:
    """Whether every OCPI receiver of the hub must read `body` as JSON (True), none may
    (False), or it is up to the receiver (None: text only the lenient stdlib parser reads,
    e.g. UTF-16 or NaN, which some receivers refuse as not UTF-8 JSON)."""
    try:
        read_json(body)
        return True
    except NotJson:
        pass
    try:
        loads_exact(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return None


ODD_SEGMENTS: Final = ("\u0000", "A\u0000B", "\u00e9", "\U0001f50c", "a b", "?", "#", "%", "%00",
                       "x" * 37, "x" * 300)  # fmt: skip


def segments(known: Sequence[str]) -> st.SearchStrategy[str]:
    """One URL path segment (decoded): a known id, another case of it, or odd text. Never
    empty, `.`, `..` or holding `/`: those address another route, not another object."""
    odd = st.text(min_size=1, max_size=48).filter(lambda s: "/" not in s and s not in {".", ".."})
    return st.one_of(
        st.sampled_from(list(known)),
        st.sampled_from(list(known)).map(str.lower),
        odd,
        st.sampled_from(ODD_SEGMENTS),
    )


def path(*parts: str) -> str:
    """A URL path from decoded segments, each percent-encoded whole."""
    return "/".join(quote(part, safe="") for part in parts)


def bad_authorizations(tokens: Sequence[str]) -> st.SearchStrategy[bytes | None]:
    """Authorization header values that authenticate no one for a module: none, other schemes,
    junk, a token sent unencoded (not allowed for these partners), unknown tokens, a token
    with a byte changed. Bytes, since a header may be anything but CR and LF."""
    encoded = [base64.b64encode(t.encode()) for t in tokens]
    unknown = st.text(min_size=1, max_size=40).map(
        lambda t: b"Token " + base64.b64encode(("unknown-" + t).encode())
    )
    # what HTTP lets a header carry: no control characters, no surrounding whitespace
    junk = st.binary(max_size=300).map(
        lambda b: bytes(c for c in b if c == 0x09 or 0x20 <= c != 0x7F).strip(b" \t")
    )
    return st.one_of(
        st.none(),
        st.just(b""),
        st.just(b"Token"),
        st.sampled_from([b"Bearer " + e for e in encoded]),
        st.sampled_from([b"Token " + t.encode() for t in tokens]),
        st.sampled_from([b"Token " + e[:-2] for e in encoded]),
        st.sampled_from([b"Token " + e + b"\xff" for e in encoded]),
        st.just(b"Token " + b"A" * 5000),
        unknown,
        junk,
        junk.map(lambda b: (b"Token " + b).strip(b" \t")),
    )


def request_ids() -> st.SearchStrategy[bytes]:
    """X-Request-ID values: a new UUID, or one the hub must replace with its own (too long,
    not printable ASCII). Never one sent before, so the request's rows are its own."""
    fresh = st.builds(lambda: str(uuid.uuid4()).encode())
    replaced = st.one_of(
        st.builds(lambda: b"r" * (ID_CHARS_MAX + 1) + uuid.uuid4().hex.encode()),
        st.just("\u00e9t\u00e9".encode()),
        st.just(b"tab\there"),
    )
    return st.one_of(fresh, fresh, replaced)


# ---------------------------------------------------------------------------------------
# What the hub kept


@dataclass(frozen=True, slots=True)
class Kept:
    """Rows of one request in the receipt tables."""

    cdrs: list[Row]  # ocpi_cdr_receipt
    references: list[Row]  # ocpi_reference_receipt (tariffs, locations)
    sessions: list[Row]  # session_push

    @property
    def rows(self) -> list[Row]:
        return [*self.cdrs, *self.references, *self.sessions]


_TOTALS: Final = (
    "SELECT (SELECT count(*) FROM ocpi_cdr_receipt) AS cdrs,"
    " (SELECT count(*) FROM ocpi_reference_receipt) AS references,"
    " (SELECT count(*) FROM session_push) AS sessions"
)


def totals(conn: psycopg.Connection[Row]) -> dict[str, int]:
    """Rows in each receipt table."""
    row = conn.execute(_TOTALS).fetchone()
    assert row is not None
    return {name: int(value) for name, value in row.items()}


def kept(conn: psycopg.Connection[Row], request_id: str) -> Kept:
    def rows(table: str) -> list[Row]:
        query = f"SELECT * FROM {table} WHERE request_id = %s"
        return conn.execute(query, (request_id,)).fetchall()

    return Kept(rows("ocpi_cdr_receipt"), rows("ocpi_reference_receipt"), rows("session_push"))


def envelope(answer: httpx.Response) -> dict[str, Any]:
    """The answer's OCPI envelope, checked: a JSON object with an integer status_code of the
    spec's ranges, a timestamp, and a status_message whenever it is not a success."""
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.text
    document = loads_exact(answer.content)
    assert isinstance(document, dict), answer.text
    code = document.get("status_code")
    assert isinstance(code, int) and 1000 <= code <= 4999, answer.text
    assert isinstance(document.get("timestamp"), str), answer.text
    if code != 1000:
        message = document.get("status_message")
        assert isinstance(message, str) and message, answer.text
    return document
