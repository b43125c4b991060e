"""OCPI answers for what goes wrong under /ocpi: always the OCPI envelope, never FastAPI's
`{"detail": …}` (the finance API keeps its own shape, pipeline.api.errors).

- `OcpiError` (raised by the auth dependency and the receivers): its HTTP and OCPI status;
- an unknown path (404) or a method the module does not have (405): the same HTTP status,
  OCPI 2000 with the reason;
- a path or query parameter that does not validate: 400, 2001, the bounded problems;
- PostgreSQL unreachable: 503 with Retry-After, OCPI 3000.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from pipeline.api import errors as api_errors
from pipeline.ocpi.envelope import OcpiError, OcpiStatus, error_response, ocpi_response
from pipeline.ocpi.paths import BASE_PATH


def _ocpi(request: Request) -> bool:
    path = request.url.path
    return path == BASE_PATH or path.startswith(BASE_PATH + "/")


async def ocpi_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OcpiError)
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not _ocpi(request):
        return await http_exception_handler(request, exc)
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    headers = None if exc.headers is None else dict(exc.headers)
    return ocpi_response(None, OcpiStatus.CLIENT_ERROR, message, exc.status_code, headers)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    if not _ocpi(request):
        return await api_errors.invalid_request(request, exc)
    assert isinstance(exc, RequestValidationError)
    problems = api_errors.unprocessable(
        [
            api_errors.problem(".".join(str(p) for p in e["loc"]), e["msg"], e.get("input"))
            for e in exc.errors()
        ]
    )["detail"]
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return ocpi_response(None, OcpiStatus.INVALID_PARAMETERS, message, 400)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    answer = await api_errors.database_unavailable(request, exc)
    if not _ocpi(request):
        return answer
    return ocpi_response(
        None, OcpiStatus.SERVER_ERROR, "the hub's database is unavailable; retry later", 503,
        {"Retry-After": answer.headers["Retry-After"]},
    )  # fmt: skip


def install(app: FastAPI) -> None:
    """After pipeline.api.errors.install: these handlers answer OCPI paths and hand every
    other path to the finance API's."""
    import psycopg

    app.add_exception_handler(OcpiError, ocpi_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
