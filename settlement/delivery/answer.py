"""What an eMSP's answer to a CDR POST means for the delivery.

OCPI 2.2.1 (mod_cdrs, transport_and_format): the receiver answers HTTP 2xx with an OCPI
envelope whose `status_code` is 1xxx on success, and a `Location` header naming the CDR in
its system. Anything else is a failed attempt, tried again by the retry policy: an HTTP
error, a 2xxx/3xxx status, an answer that is not OCPI JSON, a timeout. A 2xx answer with
status 1000 but no `Location` is still a delivery (the eMSP has the CDR: sending it again
would not give it a Location either); the missing header is noted.

    >>> judge(201, b'{"status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"}', "https://e/1")
    Verdict(delivered=True, http_status=201, ocpi_status=1000, error=None)
    >>> judge(200, b'{"status_code": 2001, "status_message": "bad"}', None).error
    'HTTP 200, OCPI 2001 "bad"'
    >>> judge(502, b"<html>", None).error
    'HTTP 502 without an OCPI answer'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

MESSAGE_CHARS_MAX: Final = 200  # of the eMSP's status_message, quoted in ours


@dataclass(frozen=True, slots=True)
class Verdict:
    delivered: bool
    http_status: int | None
    ocpi_status: int | None
    error: str | None


def failed(error: str, http_status: int | None = None) -> Verdict:
    """An attempt that got no usable answer (timeout, refused connection, …)."""
    return Verdict(False, http_status, None, error)


def judge(http_status: int, content: bytes, location: str | None) -> Verdict:
    try:
        envelope = orjson.loads(content)
    except orjson.JSONDecodeError:
        envelope = None
    code = envelope.get("status_code") if isinstance(envelope, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        return failed(f"HTTP {http_status} without an OCPI answer", http_status)
    assert isinstance(envelope, dict)
    if 200 <= http_status < 300 and 1000 <= code < 2000:
        note = None if location else "delivered, but the answer named no Location"
        return Verdict(True, http_status, code, note)
    message = str(envelope.get("status_message") or "")[:MESSAGE_CHARS_MAX]
    quoted = f' "{message}"' if message else ""
    return Verdict(False, http_status, code, f"HTTP {http_status}, OCPI {code}{quoted}")
