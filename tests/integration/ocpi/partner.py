"""A partner's OCPI platform for tests: a real HTTP server (FastAPI under uvicorn on a free
port) with versions, version details and credentials endpoints, doing its side of the
handshake in both directions, and recording every call the hub makes to it.

    with partner_platform(Partner(tokens={"token-b"})) as partner:
        partner.versions_url      # hand it to the hub
        partner.calls             # what the hub asked, with which token and request IDs
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tests.integration.settlement.http import serve_app

OK = {"status_code": 1000, "timestamp": "2026-12-03T10:00:00Z"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    token: str | None  # as the partner read it (decoded unless it reads raw tokens)
    header: str  # the Authorization header as sent
    request_id: str | None
    correlation_id: str | None


@dataclass
class Partner:
    """What the partner answers (tests change it between calls) and what it saw."""

    party: str = "NL*TNM"
    role: str = "CPO"
    tokens: set[str] = field(default_factory=set)  # the tokens it accepts
    unencoded: bool = False  # it reads (and sends) tokens as they are, OCPI 2.1.1 style
    versions: list[str] = field(default_factory=lambda: ["2.1.1", "2.2.1"])
    endpoints: list[tuple[str, str]] = field(
        default_factory=lambda: [("credentials", "SENDER"), ("cdrs", "SENDER")]
    )
    versions_reply: str = "ocpi"  # or "html500" or "huge"
    versions_delay_s: float = 0.0
    answer_roles: list[dict[str, Any]] | None = None  # credentials it answers the hub with
    base_url: str = ""
    calls: list[Call] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # credentials POSTed to it
    callback: list[int] = field(default_factory=list)  # HTTP statuses of its calls to the hub
    token_c: str | None = None  # the token it issued the hub when the hub registered

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def credentials(self, token: str) -> dict[str, Any]:
        """Its own Credentials object with `token` for the other side."""
        country, party_id = self.party.split("*")
        roles = self.answer_roles or [
            {
                "role": self.role,
                "party_id": party_id,
                "country_code": country,
                "business_details": {"name": f"{self.party} platform"},
            }
        ]
        return {"token": token, "url": self.versions_url, "roles": roles}

    def header(self, token: str) -> str:
        if self.unencoded:
            return f"Token {token}"
        return "Token " + base64.b64encode(token.encode()).decode()

    def read_token(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme != "Token" or not value:
            return None
        if self.unencoded:
            return value
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None


def _app(partner: Partner) -> FastAPI:
    app = FastAPI()

    def record(request: Request) -> Call:
        header = request.headers.get("authorization", "")
        call = Call(
            request.method,
            request.url.path,
            partner.read_token(header),
            header,
            request.headers.get("x-request-id"),
            request.headers.get("x-correlation-id"),
        )
        partner.calls.append(call)
        return call

    def refused() -> JSONResponse:
        return JSONResponse({**OK, "status_code": 2000, "status_message": "unknown token"}, 401)

    @app.get("/ocpi/versions")
    async def versions(request: Request) -> Response:
        call = record(request)
        await asyncio.sleep(partner.versions_delay_s)
        if call.token not in partner.tokens:
            return refused()
        if partner.versions_reply == "html500":
            return PlainTextResponse("<html>Internal Server Error</html>", 500)
        listed = [{"version": v, "url": f"{partner.base_url}/ocpi/{v}"} for v in partner.versions]
        if partner.versions_reply == "huge":
            listed[0]["padding"] = "x" * 2_000_000
        return JSONResponse({**OK, "data": listed})

    @app.get("/ocpi/{version}")
    async def details(version: str, request: Request) -> JSONResponse:
        call = record(request)
        if call.token not in partner.tokens:
            return refused()
        endpoints = [
            {"identifier": i, "role": r, "url": f"{partner.base_url}/ocpi/{version}/{i}"}
            for i, r in partner.endpoints
        ]
        return JSONResponse({**OK, "data": {"version": version, "endpoints": endpoints}})

    @app.post("/ocpi/2.2.1/credentials")
    async def register(request: Request) -> JSONResponse:
        call = record(request)
        if call.token not in partner.tokens:
            return refused()
        hub = await request.json()
        partner.received.append(hub)
        # before answering, call the hub back with the token it sent (as the spec says)
        async with httpx.AsyncClient(timeout=10) as client:
            headers = {"Authorization": partner.header(hub["token"])}
            try:
                answer = await client.get(hub["url"], headers=headers)
            except httpx.HTTPError:
                partner.callback.append(0)  # the hub cannot be reached
            else:
                partner.callback.append(answer.status_code)
                if answer.status_code == 200:
                    details = await client.get(answer.json()["data"][0]["url"], headers=headers)
                    partner.callback.append(details.status_code)
        if partner.callback[-1] != 200:
            return JSONResponse(
                {**OK, "status_code": 3001, "status_message": "cannot use your API"}
            )
        partner.tokens.discard(call.token or "")  # token A: thrown away
        partner.token_c = secrets.token_urlsafe(24)
        partner.tokens.add(partner.token_c)
        return JSONResponse({**OK, "data": partner.credentials(partner.token_c)})

    @app.delete("/ocpi/2.2.1/credentials")
    async def unregister(request: Request) -> JSONResponse:
        call = record(request)
        if call.token not in partner.tokens:
            return refused()
        partner.tokens.discard(call.token or "")
        return JSONResponse(OK)

    return app


@contextmanager
def partner_platform(partner: Partner) -> Iterator[Partner]:
    with serve_app(_app(partner)) as url:
        partner.base_url = url
        yield partner
