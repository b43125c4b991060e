"""How the HTTP API answers when something goes wrong: bounded, plain, no internals.

- PostgreSQL unreachable (refused, dropped, or no pooled connection within
  ``POOL_WAIT_S_MAX``): 503 with ``Retry-After``, so clients and load balancers back off
  instead of seeing a 500 after a 30-second wait. The cause is logged, not sent.
"""

from __future__ import annotations

import logging
from typing import Final

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

RETRY_AFTER_S: Final = 5
"""What a 503 asks the client to wait: a restarting PostgreSQL is usually back by then."""

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


def install(app: FastAPI) -> None:
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
