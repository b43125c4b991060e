"""HubClientInfo (OCPI 2.2.1 mod_hub_client_info), run by `roamclear deliver`: the still-alive
check of every connected party, and pushing each party's ClientInfo to the others.

- **Still alive**: every `still_alive_s` (5 minutes, as the module advises "when unsure") the
  hub GETs each registered party's versions endpoint with the party's token. A failure makes
  the party OFFLINE (recorded in partner_liveness with why); an answer again makes it
  CONNECTED. Deliveries to an OFFLINE eMSP wait, without spending their attempts, and resume
  when it is back. The hub checks every party on the interval rather than only those silent
  for that long: a party that pushes to the hub may still not answer on its own endpoints.
- **Push**: a party registered with a `hubclientinfo` RECEIVER endpoint gets a PUT of every
  other partner's ClientInfo (`{url}/{country_code}/{party_id}`) when it connects and
  whenever one changes (PLANNED, CONNECTED, OFFLINE, SUSPENDED); each accepted push is
  recorded, a failed one is tried again on the next round. No routing headers: the module
  must not carry them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Final

import httpx
import orjson
import psycopg

from pipeline.ocpi.partner_api import authorization
from settlement.delivery.answer import Verdict, failed, judge
from settlement.keys import HubKeyring
from settlement.partner_tokens import PartnerTokenError
from settlement.store import hub_client_info as store
from settlement.store import ocpi_connections
from settlement.store.db import Row
from settlement.store.hub_client_info import ClientInfo, ConnectionStatus
from settlement.store.ocpi_connections import Connection

log = logging.getLogger("roamclear.deliveries")

MODULE: Final = "hubclientinfo"
CALLS_AT_ONCE: Final = 16


@dataclass(frozen=True, slots=True)
class Reachable:
    """A registered party: where its versions and (if it has one) its ClientInfo receiver
    are, and the Authorization header the hub calls it with."""

    partner: str
    versions_url: str
    client_info_url: str | None
    authorization: str


class ClientInfoService:
    def __init__(
        self,
        keyring: HubKeyring,
        client: httpx.AsyncClient,
        still_alive_s: float,
        timeout_s: float,
    ) -> None:
        self.keyring = keyring
        self.client = client
        self.still_alive_s = still_alive_s
        self.timeout_s = timeout_s
        self.checked_at: float | None = None
        self.calls = asyncio.Semaphore(CALLS_AT_ONCE)

    async def tick(self, conn: psycopg.AsyncConnection[Row]) -> None:
        """One round: the still-alive checks when they are due, then the pushes owed."""
        parties = await self._registered(conn)
        now = time.monotonic()
        if self.checked_at is None or now - self.checked_at >= self.still_alive_s:
            self.checked_at = now
            await self.check_alive(conn, parties)
        await self.push(conn, parties)

    async def _registered(self, conn: psycopg.AsyncConnection[Row]) -> list[Reachable]:
        cursor = await conn.execute(
            "SELECT * FROM ocpi_connection_current WHERE event <> 'UNREGISTERED' ORDER BY partner"
        )
        parties = []
        for row in await cursor.fetchall():
            found = self._reachable(ocpi_connections.connection_of(row))
            if found is not None:
                parties.append(found)
        return parties

    def _reachable(self, connection: Connection) -> Reachable | None:
        registration = connection.registration
        if registration is None:
            return None
        try:
            token = ocpi_connections.partner_token(self.keyring, connection)
        except PartnerTokenError as exc:
            log.error("hubclientinfo: cannot use the token for %s: %s", connection.partner, exc)
            return None
        receiver = registration.endpoint(MODULE, "RECEIVER")
        return Reachable(
            str(connection.partner),
            registration.versions_url,
            None if receiver is None else str(receiver.url).rstrip("/"),
            authorization(token, registration.token_unencoded),
        )

    async def check_alive(
        self, conn: psycopg.AsyncConnection[Row], parties: list[Reachable]
    ) -> None:
        """GET every party's versions endpoint; record who became (un)reachable."""
        verdicts = await asyncio.gather(*(self._call("GET", p.versions_url, p) for p in parties))
        before = await store.last_reachable(conn, [p.partner for p in parties])
        for party, verdict in zip(parties, verdicts, strict=True):
            if verdict.delivered != before.get(party.partner, True):
                await store.record_liveness(
                    conn, party.partner, verdict.delivered, party.versions_url, verdict.error
                )
                log.warning(
                    "hubclientinfo: %s is %s (%s)",
                    party.partner,
                    "back" if verdict.delivered else "OFFLINE",
                    verdict.error or party.versions_url,
                )
        await conn.commit()

    async def push(self, conn: psycopg.AsyncConnection[Row], parties: list[Reachable]) -> None:
        """PUT to every connected receiver the ClientInfo it has not accepted yet."""
        infos = await store.client_infos(conn)
        status = {info.partner: info.status for info in infos}
        done = await store.pushed(conn)
        owed = [
            (party, info)
            for party in parties
            if party.client_info_url and status.get(party.partner) is ConnectionStatus.CONNECTED
            for info in infos
            if info.partner != party.partner
            and (party.partner, info.partner, info.last_updated) not in done
        ]
        results = await asyncio.gather(*(self._push(party, info) for party, info in owed))
        for (party, info), request_id in zip(owed, results, strict=True):
            if request_id is not None:
                await store.record_push(conn, party.partner, info, request_id)
        await conn.commit()

    async def _push(self, party: Reachable, info: ClientInfo) -> str | None:
        """The request id of an accepted PUT, None when it failed (tried next round)."""
        country_code, party_id = info.partner.split("*")
        url = f"{party.client_info_url}/{country_code}/{party_id}"
        request_id = str(uuid.uuid4())
        verdict = await self._call("PUT", url, party, orjson.dumps(info.as_ocpi()), request_id)
        if not verdict.delivered:
            log.warning("hubclientinfo: PUT %s failed: %s", url, verdict.error)
            return None
        return request_id

    async def _call(
        self,
        method: str,
        url: str,
        party: Reachable,
        body: bytes | None = None,
        request_id: str | None = None,
    ) -> Verdict:
        headers = {
            "Authorization": party.authorization,
            "X-Request-ID": request_id or str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with self.calls:
            try:
                async with asyncio.timeout(self.timeout_s):
                    answer = await self.client.request(method, url, content=body, headers=headers)
            except TimeoutError:
                return failed(f"no answer within {self.timeout_s} s")
            except httpx.HTTPError as exc:
                reason = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
                return failed(f"cannot reach {url}: {reason}")
        return judge(answer.status_code, answer.content, "-")
