"""The OCPI modules this hub implements: what `GET /ocpi/2.2.1` lists, and the routers the
app mounts. A module adds itself to `MODULES`, once per interface role: the hub receives
CDRs, tariffs and locations (partners push them) and sends them (partners GET lists,
pipeline.ocpi.senders), both at the module's one URL.

    Module(ModuleId.CDRS, InterfaceRole.RECEIVER, "cdrs", cdrs.router)
    -> {"identifier": "cdrs", "role": "RECEIVER", "url": "<public url>/ocpi/2.2.1/cdrs"}
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fastapi import APIRouter

# receivers: they import paths from pipeline.ocpi.paths, never this module
from pipeline.ocpi import (
    cdrs,
    credentials,
    hubclientinfo,
    locations,
    senders,
    sessions,
    tariffs,
)
from pipeline.ocpi.paths import BASE_PATH, VERSION, VERSION_PATH

__all__ = ["BASE_PATH", "MODULES", "VERSION", "VERSION_PATH", "InterfaceRole", "Module", "ModuleId"]


class ModuleId(StrEnum):
    """OCPI 2.2.1 module identifiers the hub serves."""

    CREDENTIALS = "credentials"
    CDRS = "cdrs"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    LOCATIONS = "locations"
    HUBCLIENTINFO = "hubclientinfo"


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


@dataclass(frozen=True, slots=True)
class Module:
    identifier: ModuleId
    role: InterfaceRole  # credentials: "not relevant", the spec advises SENDER
    path: str  # under VERSION_PATH
    router: APIRouter

    def url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}{VERSION_PATH}/{self.path}"


assert f"{VERSION_PATH}/{cdrs.PATH}" == cdrs.CDRS_PATH
assert f"{VERSION_PATH}/{tariffs.MODULE}" == tariffs.TARIFFS_PATH
assert f"{VERSION_PATH}/{locations.MODULE}" == locations.LOCATIONS_PATH

MODULES: tuple[Module, ...] = (
    Module(ModuleId.CREDENTIALS, InterfaceRole.SENDER, "credentials", credentials.router),
    Module(ModuleId.CDRS, InterfaceRole.RECEIVER, cdrs.PATH, cdrs.router),
    Module(ModuleId.CDRS, InterfaceRole.SENDER, cdrs.PATH, senders.cdrs_router),
    Module(ModuleId.SESSIONS, InterfaceRole.RECEIVER, "sessions", sessions.router),
    Module(ModuleId.TARIFFS, InterfaceRole.RECEIVER, tariffs.MODULE, tariffs.router),
    Module(ModuleId.TARIFFS, InterfaceRole.SENDER, tariffs.MODULE, senders.tariffs_router),
    Module(ModuleId.LOCATIONS, InterfaceRole.RECEIVER, locations.MODULE, locations.router),
    Module(ModuleId.LOCATIONS, InterfaceRole.SENDER, locations.MODULE, senders.locations_router),
    Module(
        ModuleId.HUBCLIENTINFO, InterfaceRole.SENDER, hubclientinfo.MODULE, hubclientinfo.router
    ),
)
