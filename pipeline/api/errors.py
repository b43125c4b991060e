"""How the HTTP API answers when something goes wrong: bounded, plain, no internals.

- PostgreSQL unreachable (refused, dropped, or no pooled connection within
  ``POOL_WAIT_S_MAX``): 503 with ``Retry-After``, so clients and load balancers back off
  instead of seeing a 500 after a 30-second wait. The cause is logged, not sent.
- A request that does not validate: 422 with at most ``VALIDATION_ERRORS_MAX`` problems,
  each the field and a message (at most ``MESSAGE_CHARS_MAX`` characters) and, for text, an
  excerpt of what was sent (``INPUT_EXCERPT_CHARS_MAX``). Never the whole input, pydantic's
  error types, contexts or documentation URLs: a 10 kB query parameter gets a 200-byte
  answer.

    {"detail": [{"field": "query.from", "message": "Input should be a valid datetime or
      date, input is too short", "input": "2025-13"}]}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

RETRY_AFTER_S: Final = 5
"""What a 503 asks the client to wait: a restarting PostgreSQL is usually back by then."""
VALIDATION_ERRORS_MAX: Final = 10
MESSAGE_CHARS_MAX: Final = 200
INPUT_EXCERPT_CHARS_MAX: Final = 40

log = logging.getLogger(__name__)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # OperationalError covers a refused or dropped connection, the pool's PoolTimeout and
    # TooManyRequests; SQL errors (bugs, constraint violations) stay 500s
    log.warning("503 for %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSONResponse(
        {"detail": "the database is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem(field: str, message: str, given: object = None) -> dict[str, Any]:
    """One bounded entry of a 422's ``detail``."""
    entry: dict[str, Any] = {"field": field, "message": _clip(message, MESSAGE_CHARS_MAX)}
    if isinstance(given, str):
        entry["input"] = _clip(given, INPUT_EXCERPT_CHARS_MAX)
    return entry


def unprocessable(problems: Sequence[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": list(problems[:VALIDATION_ERRORS_MAX])}
    if len(problems) > VALIDATION_ERRORS_MAX:
        body["more"] = len(problems) - VALIDATION_ERRORS_MAX
    return body


def invalid(field: str, message: str, given: object = None) -> HTTPException:
    """A 422 for a value the handler itself checks, in the same bounded shape."""
    return HTTPException(422, unprocessable([problem(field, message, given)])["detail"])


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        problem(".".join(str(part) for part in error["loc"]), error["msg"], error.get("input"))
        for error in exc.errors()
    ]
    return JSONResponse(unprocessable(problems), status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)
