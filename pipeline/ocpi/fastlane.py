"""A direct way in for the OCPI endpoints partners call most (`POST /ocpi/2.2.1/cdrs`).

FastAPI's routing (every route's pattern tried in turn), its dependency solving and its
middleware (error pages, its own telemetry check, the body limit, the exception handlers)
cost a fixed share of every request's CPU in `roamclear api`: an authenticated request that
reads a CDR body took about 360 µs of the API's CPU through all of FastAPI and about 170 µs
through a lane inside FastAPI's middleware (`roamclear bench ingest`'s process; medians of
interleaved runs on the 2-core machine). In front of that middleware, with one write per
answer (pipeline.api.serving), the bench's authenticated no-op fell from about 77 to 51 µs
(a faster machine than the first figures'). At the thousands of CDRs a second one API
process serves, that is a fifth of its capacity.

`LanedFastAPI` is FastAPI with two pure ASGI layers in front of all of it: `RequestIds`
(every answer carries the request ids, the lane's and FastAPI's alike) and `FastLane`: a
request whose exact method and path are in `routes` goes straight to its handler, which is
the very function FastAPI's route calls (the route stays registered, for OpenAPI and for any
path the lane does not take); every other request goes on to FastAPI. What FastAPI's
exception handlers would do for these handlers is done here: an `OcpiError` becomes its OCPI
envelope, PostgreSQL out of reach a 503 with `Retry-After` (pipeline.ocpi.errors); anything
else is uvicorn's 500, as FastAPI's error middleware would answer it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.ocpi import errors as ocpi_errors
from pipeline.ocpi.envelope import OcpiError, error_response
from pipeline.ocpi.request_ids import RequestIds

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


class LanedFastAPI(FastAPI):
    """FastAPI behind `RequestIds` and the lane (`fast_lane`: (method, path) -> handler)."""

    def __init__(self, fast_lane: Routes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast_lane = fast_lane
        self._front = RequestIds(FastLane(super().__call__, fast_lane))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # as Starlette sets it: the lane's handlers read request.app
        await self._front(scope, receive, send)
