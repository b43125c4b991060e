"""Simulated partners talking OCPI 2.2.1 to the hub, as real ones do (`simulate --via http`).

1. `connect`: for each partner the operator's invitation (token A, `partners invite`), then
   the partner's credentials handshake: POST its credentials (its platform's versions URL,
   its token B, its roles) with token A; the hub calls the platform back with token B and
   answers token C, which the partner uses from then on.
2. `push_reference`: each CPO PUTs its tariffs and locations (agreements are the operator's:
   `agreements set`, not OCPI).

Every call is a real HTTP request to `roamclear api`; a refusal is an error naming the
partner, the call and the hub's OCPI status.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.simulate.partners import Partner
from pipeline.simulate.platform import PartnerPlatforms, SimulatedPartner
from pipeline.simulate.reference import ReferenceData
from schemas.hub.party import PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import to_ocpi_json
from settlement.store import ocpi_tokens
from settlement.store.db import connect as connect_db

CALLS_IN_FLIGHT_MAX: Final = 16  # concurrent requests of the whole simulation
REQUEST_TIMEOUT_S: Final = 60.0
ROLES: Final = {"CPO": ("CPO",), "EMSP": ("EMSP",), "BOTH": ("CPO", "EMSP")}


class HubRefused(RuntimeError):
    """The hub answered a simulated partner's call with an error: which call, and why."""


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@dataclass(frozen=True, slots=True)
class Connected:
    """A simulated partner registered with the hub, and the token it calls with (C)."""

    partner: SimulatedPartner
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return token_header(self.token)


def _credentials(partner: SimulatedPartner, name: str, versions_url: str) -> dict[str, Any]:
    roles = [
        {
            "role": role,
            "party_id": partner.party.party_id,
            "country_code": partner.party.country_code,
            "business_details": {"name": name},
        }
        for role in ROLES[partner.role]
    ]
    return {"token": partner.token_b, "url": versions_url, "roles": roles}


def _checked(answer: httpx.Response, what: str, expected: Iterable[int] = (200, 201)) -> Any:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    status = body.get("status_code") if isinstance(body, dict) else None
    if answer.status_code not in expected or status != 1000:
        message = body.get("status_message") if isinstance(body, dict) else answer.text[:200]
        raise HubRefused(f"{what}: HTTP {answer.status_code}, OCPI {status}: {message}")
    return body.get("data")


def invite(settings: Settings, partners: Sequence[SimulatedPartner]) -> dict[PartyRef, str]:
    """Token A per partner, as `roamclear partners invite` makes it."""
    with connect_db(role_url(settings, DbRole.OPERATOR)) as conn:
        tokens = {
            p.party: ocpi_tokens.issue(conn, p.party, ocpi_tokens.TokenKind.A, label="simulate")
            for p in partners
        }
        conn.commit()
    return tokens


async def connect(
    settings: Settings,
    hub_url: str,
    platforms: PartnerPlatforms,
    partners: Sequence[Partner],
) -> dict[PartyRef, Connected]:
    """Register every partner with the hub through the credentials handshake."""
    simulated = [platforms.partners[f"{p.party.country_code}{p.party.party_id}"] for p in partners]
    names = {p.party: p.name for p in partners}
    tokens_a = invite(settings, simulated)
    limit = asyncio.Semaphore(CALLS_IN_FLIGHT_MAX)
    url = f"{hub_url.rstrip('/')}/ocpi/2.2.1/credentials"
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:

        async def register(partner: SimulatedPartner) -> Connected:
            body = _credentials(
                partner, names[partner.party], platforms.versions_url(partner.party)
            )
            async with limit:
                answer = await client.post(
                    url, json=body, headers=token_header(tokens_a[partner.party])
                )
            data = _checked(answer, f"{partner.party} registering")
            return Connected(partner, str(data["token"]))

        connected = await asyncio.gather(*(register(p) for p in simulated))
    return {c.partner.party: c for c in connected}


async def push_reference(
    hub_url: str, connected: dict[PartyRef, Connected], data: ReferenceData
) -> int:
    """Each CPO PUTs its tariffs and locations; returns how many objects were pushed."""
    root = f"{hub_url.rstrip('/')}/ocpi/2.2.1"
    limit = asyncio.Semaphore(CALLS_IN_FLIGHT_MAX)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:

        async def put(obj: Tariff | Location, module: str) -> None:
            owner = PartyRef.of(obj.country_code, obj.party_id)
            path = f"{root}/{module}/{owner.country_code}/{owner.party_id}/{obj.id}"
            async with limit:
                answer = await client.put(
                    path,
                    content=to_ocpi_json(obj),
                    headers={**connected[owner].headers, "Content-Type": "application/json"},
                )
            _checked(answer, f"{owner} PUT {module}/{obj.id}")

        await asyncio.gather(
            *(put(t, "tariffs") for t in data.tariffs),
            *(put(loc, "locations") for loc in data.locations),
        )
    return len(data.tariffs) + len(data.locations)


def simulated_partners(data: ReferenceData) -> list[SimulatedPartner]:
    return [SimulatedPartner(p.party, p.role.value) for p in data.partners]
