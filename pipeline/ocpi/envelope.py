"""The OCPI response envelope and status codes (OCPI 2.2.1 transport_and_format, status_codes).

    {"data": …, "status_code": 1000, "status_message": "Success",
     "timestamp": "2026-12-03T10:00:00Z"}

A request that reached the OCPI layer (valid JSON, an existing resource, an authenticated and
authorized sender) gets HTTP 200 or 201 even for a business problem, which the status code
(2xxx) tells; HTTP errors are for what never got there: 400 invalid JSON, 401 no or a bad
token, 404 a resource that does not exist or is not the caller's, 405 a method the module
does not have.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Final

from fastapi.responses import JSONResponse

from schemas.ocpi.types import format_datetime

STATUS_MESSAGE_CHARS_MAX: Final = 2000


class OcpiStatus(IntEnum):
    """OCPI status codes (the ones the hub answers with)."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000  # generic client error
    INVALID_PARAMETERS = 2001  # invalid or missing parameters (every violation listed)
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNREACHABLE = 3001  # the hub could not use the partner's API
    UNSUPPORTED_VERSION = 3002  # no version both sides speak
    ENDPOINTS_MISSING = 3003  # the partner lacks endpoints the hub needs


class OcpiError(Exception):
    """An answer other than success, with its HTTP status and OCPI status code."""

    def __init__(self, http_status: int, status: OcpiStatus, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = status
        self.message = message


def ocpi_body(data: Any, status: OcpiStatus, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = int(status)
    if message is not None:
        body["status_message"] = message[:STATUS_MESSAGE_CHARS_MAX]
    body["timestamp"] = format_datetime(datetime.now(UTC))
    return body


def ocpi_response(
    data: Any = None,
    status: OcpiStatus = OcpiStatus.SUCCESS,
    message: str | None = "Success",
    http_status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(ocpi_body(data, status, message), http_status, headers)


def error_response(error: OcpiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return ocpi_response(None, error.status, error.message, error.http_status, headers)
