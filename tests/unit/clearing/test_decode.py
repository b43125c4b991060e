"""Decoding a cdr.submitted value: bytes in, a valid CDR or a rejection that says why."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import CdrSubmitted, new_envelope
from schemas.wire import encode_json_bytes, to_ocpi_json
from settlement.clearing.decode import Decoded, decode
from settlement.clearing.outcome import Rejected
from settlement.clearing.reasons import Reason
from tests.unit.clearing.factories import TNM, cdr, cdr_data


def _submitted(payload: dict[str, Any]) -> bytes:
    envelope = new_envelope(CdrSubmitted, submitter=TNM, payload=cdr(1))
    document = {**envelope.model_dump(mode="python", exclude_none=True), "cdr": payload}
    return encode_json_bytes(document)


def test_a_valid_submission_decodes() -> None:
    value = to_ocpi_json(new_envelope(CdrSubmitted, submitter=TNM, payload=cdr(1)))
    decoded = decode(value)
    assert isinstance(decoded, Decoded)
    assert decoded.cdr == cdr(1)
    assert decoded.submitter == TNM


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"id": ""}, "cdr.id"),
        ({"credit": True, "credit_reference_id": ""}, "cdr.credit_reference_id"),
    ],
)
def test_an_empty_identity_is_schema_invalid(changes: dict[str, Any], path: str) -> None:
    outcome = decode(_submitted({**cdr_data(1), **changes}))
    assert isinstance(outcome, Rejected)
    assert outcome.reason is Reason.SCHEMA_INVALID
    assert [v.path for v in outcome.violations] == [path]
    assert outcome.message == f"{path}: must not be empty"


def test_a_time_before_year_one_in_utc_is_schema_invalid_not_a_crash() -> None:
    # the text is valid RFC 3339, but moving it to UTC leaves the calendar: before the fix
    # this raised OverflowError out of decode, a poison pill redelivered forever
    outcome = decode(_submitted({**cdr_data(1), "last_updated": "0001-01-01T00:30:00+01:00"}))
    assert isinstance(outcome, Rejected)
    assert outcome.reason is Reason.SCHEMA_INVALID
    assert [v.path for v in outcome.violations] == ["cdr.last_updated"]


def test_every_nul_character_in_a_cdr_is_named() -> None:
    data = cdr_data(1)
    data["charging_periods"][0]["tariff_id"] = "T\u0000"
    data["cdr_location"] = {**data["cdr_location"], "name\u0000": "x", "city": "Ams\u0000"}
    outcome = decode(_submitted(data))
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.SCHEMA_INVALID
    assert sorted((v.path, v.code) for v in outcome.violations) == [
        ("cdr.cdr_location.city", "nul"),
        ("cdr.cdr_location.name\u0000", "nul"),
        ("cdr.charging_periods[0].tariff_id", "nul"),
    ]
    assert outcome.cdr_key == "NL*TNM*CDR-2026-0002"


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    value = _submitted({**cdr_data(1), "id": "CDR\\u0000"})  # the text `CDR\u0000`
    assert b"\\\\u0000" in value
    decoded = decode(value)
    assert isinstance(decoded, Decoded) and decoded.cdr.id == "CDR\\u0000"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_utf16_and_utf32_envelopes_are_refused_with_the_reason(encoding: str) -> None:
    text = to_ocpi_json(new_envelope(CdrSubmitted, submitter=TNM, payload=cdr())).decode()
    rejected = decode(text.encode(encoding))
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.MALFORMED_JSON
    assert rejected.message.startswith("not UTF-8: the value is UTF-")
    assert "re-send it encoded as UTF-8" in rejected.message


def test_a_utf8_byte_order_mark_is_still_utf8() -> None:
    value = to_ocpi_json(new_envelope(CdrSubmitted, submitter=TNM, payload=cdr()))
    assert isinstance(decode(b"\xef\xbb\xbf" + value), Decoded)
