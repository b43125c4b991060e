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
import contextlib
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
from pipeline.simulate.plan import Expected
from pipeline.simulate.platform import PartnerPlatforms, SimulatedPartner
from pipeline.simulate.reference import ReferenceData
from schemas.base import loads_exact
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import encode_json_bytes, to_ocpi_json
from settlement.store import ocpi_tokens
from settlement.store.db import connect as connect_db

CALLS_IN_FLIGHT_MAX: Final = 16  # concurrent requests of the whole simulation
PARTNER_CONNECTIONS_MAX: Final = 4  # keep-alive connections per simulated partner
REQUEST_TIMEOUT_S: Final = 60.0
ROLES: Final = {  # the OCPI roles a partner registered as each presents
    PartnerRole.CPO: ("CPO",),
    PartnerRole.EMSP: ("EMSP",),
    PartnerRole.BOTH: ("CPO", "EMSP"),
}


KEEPALIVE_S: Final = 2.0


def _client(connections: int = CALLS_IN_FLIGHT_MAX) -> httpx.AsyncClient:
    # idle connections closed well before the server's keep-alive timeout (uvicorn's 5 s, as
    # httpx's own default): a request sent on one the server is closing fails with ReadError
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_S,
    )
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits)


THROTTLED_RETRIES_MAX: Final = 20  # 429s in a row before a simulated partner gives up


async def polite(
    client: httpx.AsyncClient, method: str, url: str, throttled: list[int], **options: Any
) -> httpx.Response:
    """A request as a well-behaved partner sends it: beyond its rate (429) it waits the
    `Retry-After` seconds the hub asked for and sends it again; `throttled[0]` counts the
    waits."""
    for _ in range(THROTTLED_RETRIES_MAX):
        answer = await client.request(method, url, **options)
        if answer.status_code != 429:
            return answer
        throttled[0] += 1
        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
    return answer


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
    async with _client() as client:

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
    hub_url: str,
    connected: dict[PartyRef, Connected],
    data: ReferenceData,
    throttled: list[int] | None = None,
) -> int:
    """Each CPO PUTs its tariffs and locations (honouring 429 as every call does, counted in
    `throttled`); returns how many objects were pushed."""
    waits = [0] if throttled is None else throttled
    root = f"{hub_url.rstrip('/')}/ocpi/2.2.1"
    limit = asyncio.Semaphore(CALLS_IN_FLIGHT_MAX)
    async with _client() as client:

        async def put(obj: Tariff | Location, module: str) -> None:
            owner = PartyRef.of(obj.country_code, obj.party_id)
            path = f"{root}/{module}/{owner.country_code}/{owner.party_id}/{obj.id}"
            async with limit:
                answer = await polite(
                    client,
                    "PUT",
                    path,
                    waits,
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
    return [SimulatedPartner(p.party, p.role) for p in data.partners]


# -- the stream: sessions and CDRs ---------------------------------------------------------

# One valid CDR in this many also has a twin session, completed, whose CDR never comes: what
# `sessions missing-cdrs` must find (the CDR itself is sent, so the books stay as planned).
SESSION_WITHOUT_CDR_EVERY: Final = 100
TWIN_PREFIX: Final = "NOCDR-"
SESSION_ID_MAX: Final = 36  # OCPI CiString(36)


@dataclass(slots=True)
class HttpTally:
    """What the partners sent over HTTP and how the hub answered (HTTP status, OCPI status)."""

    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    sessions_put: int = 0
    sessions_without_cdr: int = 0
    throttled: list[int] = field(default_factory=lambda: [0])  # 429s waited out, then resent

    def count(self, category: str, answer: httpx.Response) -> None:
        try:
            status = answer.json().get("status_code")
        except ValueError:
            status = None
        self.answers[category][f"{answer.status_code}/{status}"] += 1

    @property
    def posted(self) -> int:
        return sum(sum(a.values()) for a in self.answers.values())

    def json(self) -> dict[str, Any]:
        return {
            "answers": {c: dict(sorted(a.items())) for c, a in sorted(self.answers.items())},
            "cdrs_posted": self.posted,
            "sessions_put": self.sessions_put,
            "sessions_without_cdr": self.sessions_without_cdr,
            "throttled": self.throttled[0],
        }


@dataclass(frozen=True, slots=True)
class HttpExpected:
    """What the hub must count for a scenario sent over OCPI: the door (the receiver) keeps
    out what a partner must fix (malformed, schema-invalid, another CDR's id, another CPO's
    CDR) and answers a re-sent CDR as a duplicate without publishing it again; the rest
    reaches cdr.submitted, where clearing ledgers or rejects it."""

    accepted_http: int
    duplicates_http: int
    rejected_at_ingest: int
    ledgered: int
    rejected: int

    @property
    def received_http(self) -> int:
        return self.accepted_http + self.duplicates_http + self.rejected_at_ingest

    @classmethod
    def of(cls, expected: Expected) -> HttpExpected:
        return cls(
            accepted_http=expected.valid
            + expected.credit
            + expected.unknown_tariff
            + expected.no_agreement,
            duplicates_http=expected.exact_duplicate,
            rejected_at_ingest=expected.malformed_json
            + expected.schema_invalid
            + expected.conflicting_duplicate
            + expected.forged,
            ledgered=expected.ledgered,
            rejected=expected.unknown_tariff + expected.no_agreement,
        )


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


def twin_session_id(session_id: str) -> str:
    return TWIN_PREFIX + session_id[-(SESSION_ID_MAX - len(TWIN_PREFIX)) :]


def _owner(submission: Submission) -> PartyRef:
    country_code, party_id, _ = submission.key.decode().split("*", 2)
    return PartyRef.of(country_code, party_id)


class _Stream:
    """The requests of one `drive`: sessions and CDRs as their partners send them."""

    def __init__(
        self,
        hub_url: str,
        connected: dict[PartyRef, Connected],
        clients: dict[PartyRef, httpx.AsyncClient],
    ) -> None:
        self.root = f"{hub_url.rstrip('/')}/ocpi/2.2.1"
        self.connected = connected
        self.clients = clients
        self.cpos = [p for p, c in connected.items() if c.partner.role.as_cpo]
        self.tally = HttpTally()
        self.limit = asyncio.Semaphore(CALLS_IN_FLIGHT_MAX)
        self.answered: dict[int, asyncio.Event] = {}  # valid CDRs, by stream index

    def _headers(self, party: PartyRef) -> dict[str, str]:
        return {**self.connected[party].headers, "Content-Type": "application/json"}

    async def session(self, owner: PartyRef, cdr: dict[str, Any], session_id: str) -> None:
        started, ended = _session_docs(cdr)
        started["id"] = session_id
        url = f"{self.root}/sessions/{owner.country_code}/{owner.party_id}/{session_id}"
        headers, client = self._headers(owner), self.clients[owner]
        throttled = self.tally.throttled
        answer = await polite(
            client, "PUT", url, throttled, content=encode_json_bytes(started), headers=headers
        )
        _checked(answer, f"{owner} PUT session {session_id}")
        answer = await polite(
            client, "PATCH", url, throttled, content=encode_json_bytes(ended), headers=headers
        )
        _checked(answer, f"{owner} PATCH session {session_id}")
        self.tally.sessions_put += 1

    def expect(self, index: int, submission: Submission) -> None:
        if submission.category is Category.VALID:
            self.answered[index] = asyncio.Event()

    async def one(self, index: int, submission: Submission) -> None:
        if submission.original_index is not None:
            await self.answered[submission.original_index].wait()
        try:
            async with self.limit:
                await self._send(index, submission)
        finally:
            if index in self.answered:
                self.answered[index].set()

    async def _send(self, index: int, submission: Submission) -> None:
        owner = _owner(submission)
        category = submission.category
        body = cdr_json(submission)
        caller = owner
        if category is Category.FORGED and len(self.cpos) > 1:  # another CPO, in its name
            caller = next(p for p in self.cpos if p != owner)
        if category is Category.VALID:
            cdr = loads_exact(body)
            if cdr.get("session_id"):
                await self.session(owner, cdr, cdr["session_id"])
                if index % SESSION_WITHOUT_CDR_EVERY == 0:
                    await self.session(owner, cdr, twin_session_id(cdr["session_id"]))
                    self.tally.sessions_without_cdr += 1
        answer = await polite(
            self.clients[caller],
            "POST",
            f"{self.root}/cdrs",
            self.tally.throttled,
            content=body,
            headers=self._headers(caller),
        )
        self.tally.count(category.value, answer)


async def drive(
    hub_url: str,
    connected: dict[PartyRef, Connected],
    submissions: Iterable[Submission],
    progress: Callable[[int], None] = lambda _: None,
) -> HttpTally:
    """Every submission over OCPI: a valid CDR's session first (PUT then PATCH), then the CDR
    POSTed by its CPO; a forged one POSTed by another CPO; a malformed one as its bytes. A
    duplicate or credit waits until its original was answered (the stream's order, which
    concurrent requests would otherwise lose). One valid CDR in a hundred has a twin session
    whose CDR never comes (a missing CDR)."""
    # a client of its own per partner, as partners have: httpx's pool scans its every
    # connection for every waiting request whenever one starts or ends, so one shared pool
    # cost the simulation more CPU than its requests
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            party: await stack.enter_async_context(_client(PARTNER_CONNECTIONS_MAX))
            for party in connected
        }
        stream = _Stream(hub_url, connected, clients)
        pending: set[asyncio.Task[None]] = set()
        for index, submission in enumerate(submissions):
            stream.expect(index, submission)
            pending.add(asyncio.create_task(stream.one(index, submission)))
            if len(pending) >= CALLS_IN_FLIGHT_MAX * 4:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                progress(len(done))
        for finished in asyncio.as_completed(pending):
            await finished
            progress(1)
    return stream.tally
