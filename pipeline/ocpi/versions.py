"""`GET /ocpi/versions` and `GET /ocpi/2.2.1` (OCPI 2.2.1 version_information_endpoint).

Both open to a registration token (A) as well as the handshake's token (C). URLs are built
from `ROAMCLEAR_PUBLIC_URL`, the address partners reach the hub at (behind a proxy, not the
address uvicorn binds).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pipeline.ocpi.auth import RegistrationCaller
from pipeline.ocpi.envelope import ocpi_response
from pipeline.ocpi.modules import BASE_PATH, VERSION, VERSION_PATH, Module

router = APIRouter(tags=["ocpi"])


@router.get(f"{BASE_PATH}/versions", summary="OCPI versions this hub speaks")
def versions(request: Request, caller: RegistrationCaller) -> JSONResponse:
    public: str = request.app.state.public_url
    return ocpi_response([{"version": VERSION, "url": f"{public.rstrip('/')}{VERSION_PATH}"}])


@router.get(VERSION_PATH, summary="OCPI 2.2.1 version details: the hub's endpoints")
def version_details(request: Request, caller: RegistrationCaller) -> JSONResponse:
    public: str = request.app.state.public_url
    modules: tuple[Module, ...] = request.app.state.ocpi_modules
    endpoints = [
        {"identifier": m.identifier.value, "role": m.role.value, "url": m.url(public)}
        for m in modules
    ]
    return ocpi_response({"version": VERSION, "endpoints": endpoints})
