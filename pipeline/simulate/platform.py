"""Simulated partners' own OCPI platforms, for `simulate --via http` and the demo.

A real partner runs an OCPI platform the hub calls during the credentials handshake (its
versions and 2.2.1 details, with the token the partner gave the hub). One HTTP server plays
that part for every simulated partner, each under a prefix of its own:

    GET  /p/NLTNM/ocpi/versions      [{"version": "2.2.1", "url": ".../p/NLTNM/ocpi/2.2.1"}]
    GET  /p/NLTNM/ocpi/2.2.1         credentials, cdrs, sessions, tariffs, locations
                                     (SENDER; an eMSP also `cdrs` RECEIVER)
    POST /p/DEEMP/ocpi/2.2.1/cdrs    an eMSP's CDR receiver (the hub delivers its CDRs):
                                     201 with a Location, every id counted; the first POST
                                     of one CDR in FLAKY_ONE_IN answers 503, as a real
                                     receiver sometimes does, so the hub retries it

Every call must carry that partner's token (`Authorization: Token <base64>`), as the hub's
must. FastAPI under uvicorn on 127.0.0.1 and a free port, in a thread; `stop()` ends it.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from pipeline.api.serving import free_port
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.types import format_datetime

START_WAIT_S_MAX: Final = 20.0
FLAKY_ONE_IN: Final = 25  # by a hash of the CDR id: the same CDRs on every run
STOP_WAIT_S_MAX: Final = 10.0
VERSION: Final = "2.2.1"


def code(party: PartyRef) -> str:
    return f"{party.country_code}{party.party_id}"


def _envelope(data: Any, status: int = 1000, message: str = "Success") -> dict[str, Any]:
    return {
        "data": data,
        "status_code": status,
        "status_message": message,
        "timestamp": format_datetime(datetime.now(UTC)),
    }


@dataclass
class SimulatedPartner:
    party: PartyRef
    role: PartnerRole
    token_b: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # the hub calls with it


class PartnerPlatforms:
    """The platforms of `partners`; `start()` serves them, `stop()` ends the server."""

    def __init__(self, partners: list[SimulatedPartner]) -> None:
        self.partners = {code(p.party): p for p in partners}
        self.cdrs_received: Counter[str] = Counter()  # per eMSP
        self.cdr_ids: Counter[tuple[str, str]] = Counter()  # (eMSP, CDR id): POSTs accepted
        self.refused_once: set[tuple[str, str]] = set()  # flaky first answers given
        self.calls = 0
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def versions_url(self, party: PartyRef) -> str:
        return f"{self.base_url}/p/{code(party)}/ocpi/versions"

    def _partner(self, party_code: str, authorization: str | None) -> SimulatedPartner | None:
        partner = self.partners.get(party_code)
        if partner is None or authorization is None:
            return None
        sent = authorization.partition(" ")[2].strip()
        expected = base64.b64encode(partner.token_b.encode()).decode()
        return partner if secrets.compare_digest(sent, expected) else None

    def _app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        refused = JSONResponse(_envelope(None, 2000, "unknown token"), 401)

        @app.get("/p/{party_code}/ocpi/versions")
        def versions(party_code: str, authorization: str | None = Header(None)) -> Any:
            self.calls += 1
            if self._partner(party_code, authorization) is None:
                return refused
            url = f"{self.base_url}/p/{party_code}/ocpi/{VERSION}"
            return _envelope([{"version": VERSION, "url": url}])

        @app.get("/p/{party_code}/ocpi/2.2.1")
        def details(party_code: str, authorization: str | None = Header(None)) -> Any:
            self.calls += 1
            partner = self._partner(party_code, authorization)
            if partner is None:
                return refused
            root = f"{self.base_url}/p/{party_code}/ocpi/{VERSION}"
            endpoints = [
                {"identifier": module, "role": "SENDER", "url": f"{root}/{module}"}
                for module in ("credentials", "cdrs", "sessions", "tariffs", "locations")
            ]
            if partner.role.as_emsp:
                endpoints.append({"identifier": "cdrs", "role": "RECEIVER", "url": f"{root}/cdrs"})
            return _envelope({"version": VERSION, "endpoints": endpoints})

        @app.post("/p/{party_code}/ocpi/2.2.1/cdrs")
        def cdr(
            party_code: str, body: dict[str, Any], authorization: str | None = Header(None)
        ) -> Any:
            partner = self._partner(party_code, authorization)
            if partner is None or not partner.role.as_emsp:
                return refused
            cdr_id = str(body.get("id"))
            key = (party_code, cdr_id)
            if zlib.crc32(cdr_id.encode()) % FLAKY_ONE_IN == 0 and key not in self.refused_once:
                self.refused_once.add(key)
                return JSONResponse(_envelope(None, 3000, "busy, try again"), 503)
            self.cdrs_received[party_code] += 1
            self.cdr_ids[key] += 1
            location = f"{self.base_url}/p/{party_code}/ocpi/2.2.1/cdrs/{quote(cdr_id, safe='')}"
            return JSONResponse(_envelope(None), 201, headers={"Location": location})

        return app

    def start(self) -> None:
        port = free_port()
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_WAIT_S_MAX
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the simulated partners' OCPI platform did not start")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> PartnerPlatforms:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STOP_WAIT_S_MAX)
