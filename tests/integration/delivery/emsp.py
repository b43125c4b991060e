"""A fake eMSP's CDRs receiver for delivery tests: a real HTTP server (FastAPI under uvicorn on
127.0.0.1 and a free port) that answers as a test scripts it and records every POST.

    emsp = FakeEmsp(script=[500, "slow", 201])   # then 201 for ever
    with emsp.serving() as url:
        ...                                      # url + "/cdrs" is the receiver
    emsp.received                                # every POST: headers and body
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from pipeline.bench.deliver import record_receiver
from pipeline.config import Settings
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from tests.integration.settlement.http import serve_app

OK = {"status_code": 1000, "timestamp": "2026-12-03T10:00:00Z"}
SLOW_S = 3.0  # longer than the tests' delivery timeout


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def cdr(self) -> dict[str, Any]:
        document: dict[str, Any] = loads_exact(self.body)
        return document


@dataclass
class FakeEmsp:
    """Answers the n-th POST by script[n] (then 201/1000 for ever): an HTTP status (with an
    OCPI 1000 body for 2xx, 3000 otherwise), "slow" (answers after SLOW_S), "html" (200
    with a page, not OCPI), "ocpi2001" (HTTP 200, OCPI 2001), "no-location" (201 without
    the header)."""

    token: str = "emsp-token"
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    up: bool = True  # its versions endpoint answers (the hub's still-alive check)
    client_infos: list[dict[str, Any]] = field(default_factory=list)  # PUT to it, in order

    def ok(self) -> list[Received]:
        """The POSTs it answered with success."""
        return [r for r in self.received if r.headers.get("x-answered") == "ok"]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/cdrs")
        async def cdrs(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                step = (
                    self.script[len(self.received)]
                    if len(self.received) < len(self.script)
                    else 201
                )
                headers = dict(request.headers)
                headers["x-answered"] = "ok" if step in (200, 201, "no-location") else "no"
                self.received.append(Received(headers, body))
            cdr_id = loads_exact(body)["id"]
            location = {"Location": f"https://emsp.example/cdrs/{cdr_id}"}
            if step == "slow":
                await asyncio.sleep(SLOW_S)
                return JSONResponse(OK, status_code=201, headers=location)
            if step == "html":
                return PlainTextResponse("<html>oops</html>", status_code=200)
            if step == "ocpi2001":
                return JSONResponse({**OK, "status_code": 2001, "status_message": "no"})
            if step == "no-location":
                return JSONResponse(OK, status_code=201)
            assert isinstance(step, int)
            if 200 <= step < 300:
                return JSONResponse(OK, status_code=step, headers=location)
            return JSONResponse({**OK, "status_code": 3000}, status_code=step)

        @app.get("/versions")
        async def versions() -> Response:
            if not self.up:
                return PlainTextResponse("down for maintenance", status_code=503)
            return JSONResponse({**OK, "data": [{"version": "2.2.1", "url": "x"}]})

        @app.put("/hubclientinfo/{country_code}/{party_id}")
        async def client_info(country_code: str, party_id: str, request: Request) -> Response:
            info = loads_exact(await request.body())
            assert (info["country_code"], info["party_id"]) == (country_code, party_id)
            self.client_infos.append(info)
            return JSONResponse(OK)

        return app

    @contextmanager
    def serving(self, port: int | None = None) -> Iterator[str]:
        with serve_app(self.app(), port) as url:
            yield url


def connect_emsp(
    settings: Settings, emsp: PartyRef, receiver_url: str, token: str, *modules: str
) -> str:
    """Register the eMSP over OCPI as a handshake would, with a cdrs RECEIVER endpoint (and
    one for each of `modules`, e.g. hubclientinfo); the token it calls the hub with."""
    return record_receiver(settings, emsp, receiver_url, token, *modules)
