"""Reading the token out of `Authorization: Token …`."""

from __future__ import annotations

import base64

import pytest

from pipeline.ocpi.auth import decoded_token
from pipeline.ocpi.request_ids import _kept


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_221_form_is_base64_of_the_token() -> None:
    assert decoded_token(_b64("example-token")) == "example-token"


def test_a_trailing_newline_is_dropped_as_in_the_spec_examples() -> None:
    assert decoded_token("ZXhhbXBsZS10b2tlbgo=") == "example-token"


@pytest.mark.parametrize(
    "value",
    ["not base64!", _b64("two words"), _b64("tab\there"), base64.b64encode(b"\xff\xfe").decode()],
)
def test_what_is_not_base64_of_a_printable_token_is_no_token(value: str) -> None:
    assert decoded_token(value) is None


def test_request_ids_are_kept_when_sane_and_made_otherwise() -> None:
    assert _kept(b"abc-123") == "abc-123"
    for bad in (None, b"", b"x" * 65, b"\xff", b"line\nbreak"):
        made = _kept(bad)
        assert len(made) == 36 and made != (bad or b"").decode(errors="replace")
