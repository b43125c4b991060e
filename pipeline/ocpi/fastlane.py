"""A direct way in for the OCPI endpoints partners call most (`POST /ocpi/2.2.1/cdrs`).

FastAPI's routing (every route's pattern tried in turn), its dependency solving and its
exception middleware cost about 200 µs of CPU per request in `roamclear api`: an
authenticated request that reads a CDR body took about 360 µs of the API's CPU through
FastAPI and about 170 µs through this lane (`roamclear bench ingest`'s process; medians of
interleaved runs on the 2-core machine). At the thousands of CDRs a second one API process
serves, that is a fifth of its capacity.

The lane is a pure ASGI middleware inside `RequestIds` (so every answer still carries the
request ids): a request whose exact method and path are in `routes` goes straight to its
handler, which is the very function FastAPI's route calls (the route stays registered, for
OpenAPI and for any path the lane does not take). What FastAPI's exception handlers would do
for these handlers is done here: an `OcpiError` becomes its OCPI envelope, PostgreSQL out of
reach a 503 with `Retry-After` (pipeline.ocpi.errors); anything else stays a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping

import psycopg
from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.ocpi import errors as ocpi_errors
from pipeline.ocpi.envelope import OcpiError, error_response

Handler = Callable[[Request], Awaitable[Response]]
Routes = MutableMapping[tuple[str, str], Handler]  # (method, path) -> handler


class FastLane:
    def __init__(self, app: ASGIApp, routes: Routes) -> None:
        self.app = app
        self.routes = routes  # shared: `bench ingest`'s process adds its no-op to it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except OcpiError as exc:
            response = error_response(exc)
        except psycopg.OperationalError as exc:
            response = await ocpi_errors.database_unavailable(request, exc)
        await response(scope, receive, send)
