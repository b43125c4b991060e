"""Calling a partner's OCPI API: the hub's outbound half of the credentials handshake.

    with partner_client() as client:
        call = PartnerCall(client, token_b, unencoded=False, correlation_id=ids.correlation_id)
        found = discover(call, "https://cpo.example.com/ocpi/versions")
        found.version_url, found.details.endpoints

Every call is bounded: a connect timeout, a read timeout, a deadline for the whole exchange
and a cap on the response size (the `*_MAX` constants), no redirects followed (a versions URL
that redirects is a misconfiguration to fix, not to chase), and only http and https.
Anything that keeps the hub from using the partner's API is `HandshakeFailed` with the OCPI
status the spec names: 3001 (unreachable, an error answer, not OCPI), 3002 (no 2.2.1).
Messages name the URL and what went wrong, never the token.

Each call carries a new X-Request-ID and the X-Correlation-ID of the exchange it belongs to
(2.2.1 "Unique message IDs"); no OCPI-to/from routing headers, which versions and
credentials must not carry.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Any, Final

import httpx

from pipeline.ocpi.envelope import OcpiStatus
from pipeline.ocpi.paths import VERSION
from schemas.base import loads_exact
from schemas.ocpi.credentials import Version, VersionDetails
from schemas.validation import SchemaInvalid, parse_model

CONNECT_TIMEOUT_S: Final = 5.0
READ_TIMEOUT_S: Final = 10.0  # between two reads of the answer
CALL_S_MAX: Final = 20.0  # one request and its whole answer
RESPONSE_BYTES_MAX: Final = 1_000_000  # a versions or details answer is a few kB
VERSIONS_MAX: Final = 32
ENDPOINTS_MAX: Final = 64
PARTNER_MESSAGE_CHARS_MAX: Final = 200  # of the partner's status_message, quoted in ours


class HandshakeFailed(Exception):
    """The partner's API cannot be used for the handshake; `status` is the OCPI code to
    answer (3001, 3002, 3003) and the message says what to fix."""

    def __init__(self, status: OcpiStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unusable(message: str) -> HandshakeFailed:
    return HandshakeFailed(OcpiStatus.CLIENT_API_UNREACHABLE, message)


def authorization(token: str, unencoded: bool) -> str:
    """The Authorization header for a token: base64 (2.2.1), or as it is (2.1.1 style)."""
    if unencoded:
        return f"Token {token}"
    return "Token " + base64.b64encode(token.encode("ascii")).decode("ascii")


@contextmanager
def partner_client() -> Iterator[httpx.Client]:
    """An httpx client with the handshake's timeouts; redirects are not followed."""
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        yield client


@dataclass(frozen=True, slots=True)
class Answer:
    """A partner's answer: the HTTP status and the OCPI envelope (a JSON object)."""

    http_status: int
    envelope: dict[str, Any]

    @property
    def status_code(self) -> object:
        return self.envelope.get("status_code")

    def summary(self) -> str:
        """`HTTP 401, OCPI 2000 "unknown token"`: for messages."""
        message = str(self.envelope.get("status_message") or "")[:PARTNER_MESSAGE_CHARS_MAX]
        quoted = f' "{message}"' if message else ""
        return f"HTTP {self.http_status}, OCPI {self.status_code}{quoted}"

    @property
    def succeeded(self) -> bool:
        code = self.status_code
        return (
            200 <= self.http_status < 300
            and isinstance(code, int)
            and not isinstance(code, bool)
            and 1000 <= code < 2000
        )


@dataclass(frozen=True, slots=True)
class PartnerCall:
    """Calls to one partner with one of its tokens."""

    client: httpx.Client
    token: str
    unencoded: bool
    correlation_id: str

    def headers(self, request_id: str) -> dict[str, str]:
        return {
            "Authorization": authorization(self.token, self.unencoded),
            "X-Request-ID": request_id,
            "X-Correlation-ID": self.correlation_id,
        }

    def exchange(
        self, method: str, url: str, body: object = None, request_id: str | None = None
    ) -> Answer:
        """One request; its answer as an OCPI envelope, or HandshakeFailed (3001)."""
        if httpx.URL(url).scheme not in ("http", "https"):
            raise _unusable(f"{url} is not an http(s) URL")
        headers = self.headers(request_id or str(uuid.uuid4()))
        http_status, content = self._bounded(method, url, headers, body)
        try:
            document = loads_exact(content)
        except (JSONDecodeError, UnicodeDecodeError, ValueError):
            raise _unusable(f"{method} {url} answered HTTP {http_status} without JSON") from None
        if not isinstance(document, dict) or "status_code" not in document:
            raise _unusable(
                f"{method} {url} answered HTTP {http_status} with JSON that is not an OCPI "
                "response (no status_code)"
            )
        return Answer(http_status, document)

    def _bounded(
        self, method: str, url: str, headers: dict[str, str], body: object
    ) -> tuple[int, bytes]:
        deadline = time.monotonic() + CALL_S_MAX
        try:
            with self.client.stream(method, url, headers=headers, json=body) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > RESPONSE_BYTES_MAX:
                    raise _unusable(f"{url} answered more than {RESPONSE_BYTES_MAX} bytes")
                content = bytearray()
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > RESPONSE_BYTES_MAX:
                        raise _unusable(f"{url} answered more than {RESPONSE_BYTES_MAX} bytes")
                    if time.monotonic() > deadline:
                        raise _unusable(f"{url} did not finish answering within {CALL_S_MAX} s")
                return response.status_code, bytes(content)
        except httpx.TimeoutException:
            raise _unusable(
                f"{url} did not answer in time (connect {CONNECT_TIMEOUT_S} s, "
                f"read {READ_TIMEOUT_S} s)"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _unusable(f"cannot reach {url}: {_reason(exc)}") from None

    def get_data(self, url: str) -> object:
        """The `data` of a successful GET, else HandshakeFailed (3001)."""
        answer = self.exchange("GET", url)
        if not answer.succeeded:
            raise _unusable(f"GET {url} answered {answer.summary()}")
        return answer.envelope.get("data")


def _reason(exc: Exception) -> str:
    """What went wrong, without the request (an httpx message may quote headers in some
    versions; the token must never reach a log or a response)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:PARTNER_MESSAGE_CHARS_MAX]


@dataclass(frozen=True, slots=True)
class PartnerVersion:
    """What the hub learnt from a partner's versions and version details."""

    versions_url: str
    version_url: str
    details: VersionDetails


def _invalid(what: str, url: str, exc: SchemaInvalid) -> HandshakeFailed:
    problems = "; ".join(str(v) for v in exc.violations[:10])
    return _unusable(f"the {what} at {url} are not OCPI 2.2.1: {problems}")


def discover(call: PartnerCall, versions_url: str) -> PartnerVersion:
    """The partner's 2.2.1 endpoints: its versions, then the 2.2.1 details."""
    data = call.get_data(versions_url)
    if not isinstance(data, list) or not data or not all(isinstance(i, dict) for i in data):
        raise _unusable(f"the versions at {versions_url} are not a non-empty list of objects")
    if len(data) > VERSIONS_MAX:
        raise _unusable(f"{versions_url} lists {len(data)} versions; at most {VERSIONS_MAX}")
    try:
        versions = [parse_model(Version, item) for item in data]
    except SchemaInvalid as exc:
        raise _invalid("versions", versions_url, exc) from None
    chosen = next((v for v in versions if v.version == VERSION), None)
    if chosen is None:
        spoken = ", ".join(v.version for v in versions)
        raise HandshakeFailed(
            OcpiStatus.UNSUPPORTED_VERSION,
            f"the partner speaks {spoken} ({versions_url}); this hub speaks only {VERSION}",
        )
    details_data = call.get_data(chosen.url)
    if not isinstance(details_data, dict):
        raise _unusable(f"the version details at {chosen.url} are not an object")
    endpoints = details_data.get("endpoints")
    if endpoints == []:
        raise HandshakeFailed(OcpiStatus.ENDPOINTS_MISSING, f"{chosen.url} lists no endpoints")
    if isinstance(endpoints, list) and len(endpoints) > ENDPOINTS_MAX:
        raise _unusable(f"{chosen.url} lists {len(endpoints)} endpoints; at most {ENDPOINTS_MAX}")
    try:
        details = parse_model(VersionDetails, details_data)
    except SchemaInvalid as exc:
        raise _invalid("version details", chosen.url, exc) from None
    if details.version != VERSION:
        raise HandshakeFailed(
            OcpiStatus.UNSUPPORTED_VERSION,
            f"{chosen.url}, listed as {VERSION}, describes version {details.version}",
        )
    return PartnerVersion(versions_url, chosen.url, details)
