"""Simulated partners talking OCPI 2.2.1 to the hub, as real ones do (`simulate --via http`).

1. `connect`: for each partner the operator's invitation (token A, `partners invite`), then
   the partner's credentials handshake: POST its credentials (its platform's versions URL,
   its token B, its roles) with token A; the hub calls the platform back with token B and
   answers token C, which the partner uses from then on.
2. `push_reference`: each CPO PUTs its tariffs and locations (agreements are the operator's:
   `agreements set`, not OCPI).
3. `drive`: the scenario's stream as CPOs send it: each valid CDR's session (PUT when it
   starts, PATCH when it ends), then the CDR POSTed; a few sessions whose CDR never comes.

Every call is a real HTTP request to `roamclear api`; a refusal is an error naming the
partner, the call and the hub's OCPI status.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.simulate.config import Category
from pipeline.simulate.generator import Submission
from pipeline.simulate.partners import Partner
from pipeline.simulate.platform import PartnerPlatforms, SimulatedPartner
from pipeline.simulate.reference import ReferenceData
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import encode_json_bytes, to_ocpi_json
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


# -- the stream: sessions and CDRs ---------------------------------------------------------

SESSION_ONLY_PER_THOUSAND: Final = 10  # valid CDRs whose session is sent and the CDR never


@dataclass(slots=True)
class HttpTally:
    """What the partners sent over HTTP and how the hub answered (HTTP status, OCPI status)."""

    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    sessions_put: int = 0
    sessions_without_cdr: int = 0

    def count(self, category: str, answer: httpx.Response) -> None:
        try:
            status = answer.json().get("status_code")
        except ValueError:
            status = None
        self.answers[category][f"{answer.status_code}/{status}"] += 1

    def json(self) -> dict[str, Any]:
        return {
            "answers": {c: dict(sorted(a.items())) for c, a in sorted(self.answers.items())},
            "sessions_put": self.sessions_put,
            "sessions_without_cdr": self.sessions_without_cdr,
        }


def cdr_json(submission: Submission) -> bytes:
    """The CDR inside a generated envelope, byte for byte (malformed ones: as generated)."""
    value = submission.value
    start = value.find(b'"cdr":')
    return value if start < 0 else value[start + 6 : -1]


def _session_docs(cdr: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session of a CDR as its CPO pushes it: a PUT when it starts (ACTIVE, nothing
    charged yet) and a PATCH when it ends (COMPLETED, with its periods and cost)."""
    location = cdr["cdr_location"]
    started = {
        "country_code": cdr["country_code"],
        "party_id": cdr["party_id"],
        "id": cdr["session_id"],
        "start_date_time": cdr["start_date_time"],
        "kwh": 0,
        "cdr_token": cdr["cdr_token"],
        "auth_method": cdr["auth_method"],
        "location_id": location["id"],
        "evse_uid": location["evse_uid"],
        "connector_id": location["connector_id"],
        "currency": cdr["currency"],
        "status": "ACTIVE",
        "last_updated": cdr["start_date_time"],
    }
    if cdr.get("authorization_reference"):
        started["authorization_reference"] = cdr["authorization_reference"]
    ended = {
        "status": "COMPLETED",
        "end_date_time": cdr["end_date_time"],
        "kwh": cdr["total_energy"],
        "charging_periods": cdr["charging_periods"],
        "total_cost": cdr["total_cost"],
        "last_updated": cdr["end_date_time"],
    }
    return started, ended


def _owner(submission: Submission) -> PartyRef:
    country_code, party_id, _ = submission.key.decode().split("*", 2)
    return PartyRef.of(country_code, party_id)


async def drive(
    hub_url: str,
    connected: dict[PartyRef, Connected],
    submissions: Iterable[Submission],
    progress: Callable[[int], None] = lambda _: None,
) -> HttpTally:
    """Every submission over OCPI: a valid CDR's session first (PUT then PATCH), then the CDR
    POSTed by its CPO; a forged one POSTed by another CPO; a malformed one as its bytes. One
    in a hundred valid CDRs never comes, its session does (a missing CDR)."""
    root = f"{hub_url.rstrip('/')}/ocpi/2.2.1"
    cpos = [party for party, c in connected.items() if c.partner.role in {"CPO", "BOTH"}]
    tally = HttpTally()
    limit = asyncio.Semaphore(CALLS_IN_FLIGHT_MAX)
    json_type = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:

        async def session(owner: PartyRef, cdr: dict[str, Any]) -> None:
            started, ended = _session_docs(cdr)
            url = f"{root}/sessions/{owner.country_code}/{owner.party_id}/{cdr['session_id']}"
            headers = {**connected[owner].headers, **json_type}
            _checked(await client.put(url, content=encode_json_bytes(started), headers=headers),
                     f"{owner} PUT session {cdr['session_id']}")  # fmt: skip
            _checked(await client.patch(url, content=encode_json_bytes(ended), headers=headers),
                     f"{owner} PATCH session {cdr['session_id']}")  # fmt: skip
            tally.sessions_put += 1

        async def one(index: int, submission: Submission) -> None:
            owner = _owner(submission)
            category = submission.category
            body = cdr_json(submission)
            caller = owner
            if category is Category.FORGED:  # another CPO writes in this one's name
                caller = next(p for p in cpos if p != owner) if len(cpos) > 1 else owner
            async with limit:
                if category is Category.VALID and submission.cdr_key is not None:
                    cdr = loads_exact(body)
                    if cdr.get("session_id"):
                        await session(owner, cdr)
                        if index % 1000 < SESSION_ONLY_PER_THOUSAND:
                            tally.sessions_without_cdr += 1
                            return
                answer = await client.post(
                    f"{root}/cdrs", content=body, headers={**connected[caller].headers, **json_type}
                )
            tally.count(category.value, answer)

        pending: set[asyncio.Task[None]] = set()
        for index, submission in enumerate(submissions):
            pending.add(asyncio.create_task(one(index, submission)))
            if len(pending) >= CALLS_IN_FLIGHT_MAX * 4:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                progress(len(done))
        for finished in asyncio.as_completed(pending):
            await finished
            progress(1)
    return tally
