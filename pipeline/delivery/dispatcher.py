"""POSTing deliveries to eMSPs: one loop per eMSP, so a dead eMSP slows nobody else.

Each loop claims due deliveries of its eMSP (settlement.store.deliveries.claim: a lease in
PostgreSQL, so several `roamclear deliver` processes share the work and a killed one's claims
run out and are taken again), records each attempt, POSTs the documents `concurrency` at a
time, and records the answers. With nothing due it sleeps until the next delivery falls
due, at most `IDLE_POLL_S` (new deliveries appear without notice).

A request carries what OCPI asks of a hub forwarding a CPO's CDR (2.2.1 "Message Routing",
"Unique message IDs"): the hub's token for the eMSP, a new X-Request-ID per attempt, the
X-Correlation-ID of the CPO's request, OCPI-from-* = the CPO and OCPI-to-* = the eMSP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Final

import aiohttp
import psycopg

from pipeline.delivery import intake
from pipeline.delivery.client_info import ClientInfoService
from pipeline.ocpi.partner_api import authorization
from schemas.hub.party import PartyRef
from settlement.delivery.answer import Verdict, failed, judge
from settlement.delivery.retry import RetryPolicy
from settlement.keys import HubKeyring
from settlement.partner_tokens import PartnerTokenError
from settlement.store import deliveries, hub_client_info, ocpi_connections
from settlement.store.db import Row, connect_async
from settlement.store.deliveries import Answered, Claimed
from settlement.store.hub_client_info import ConnectionStatus

log = logging.getLogger("roamclear.deliveries")

IDLE_POLL_S: Final = 0.5
EMSPS_REFRESH_S: Final = 5.0  # how often the set of eMSPs (and their endpoints) is read again
RECEIVER_REFRESH_S: Final = 1.0  # how often a loop reads its eMSP's endpoint and status
RESPONSE_BYTES_MAX: Final = 1_000_000
CLAIM_ROUNDS_MAX: Final = 8
# After a claim that came back short of a full one, the loop lets deliveries gather this long
# before it claims again: ten loops claiming one or two rows at a time take the CPU the
# intake needs to create rows (one process for both), and the backlog then drains as a
# trickle (bench deliver, "deliveries created/s").
GATHER_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    retry: RetryPolicy
    concurrency: int  # POSTs at once per eMSP
    timeout_s: float  # one POST, connect to last byte
    lease_s: float  # a claim's life: longer than a POST

    @property
    def claim_size(self) -> int:
        """Deliveries claimed at once: as many rounds of `concurrency` POSTs as fit in half
        the lease even if every POST runs into its timeout, so a claim never runs out while
        its dispatcher still works on it (which would let another send the same CDRs)."""
        rounds = max(1, int(self.lease_s / (2 * self.timeout_s)))
        return self.concurrency * min(rounds, CLAIM_ROUNDS_MAX)


@dataclass(frozen=True, slots=True)
class Receiver:
    """Where and how the hub reaches one eMSP's CDRs receiver."""

    url: str
    authorization: str


class Dispatcher:
    def __init__(
        self,
        database_url: str,
        keyring: HubKeyring,
        policy: DispatchPolicy,
        session: aiohttp.ClientSession,
        client_info: ClientInfoService | None = None,
    ) -> None:
        self.database_url = database_url
        self.keyring = keyring
        self.policy = policy
        self.session = session
        self.client_info = client_info
        self.loops: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Until cancelled: a loop for each eMSP the hub pushes to."""
        conn = await connect_async(self.database_url, autocommit=True)
        try:
            while True:
                await intake.promote(conn)  # reversals whose original came while idle
                if self.client_info is not None:
                    await self.client_info.tick(conn)
                for emsp in await deliveries.receiving_emsps(conn):
                    loop = self.loops.get(emsp)
                    if loop is None or loop.done():
                        if loop is not None and not loop.cancelled() and loop.exception():
                            raise loop.exception()  # type: ignore[misc]
                        self.loops[emsp] = asyncio.create_task(self._emsp(emsp), name=emsp)
                await asyncio.sleep(EMSPS_REFRESH_S)
        finally:
            for loop in self.loops.values():
                loop.cancel()
            await asyncio.gather(*self.loops.values(), return_exceptions=True)
            await conn.close()

    async def _emsp(self, emsp: str) -> None:
        # autocommit: each claim and each finish is one statement, committed on its own
        conn = await connect_async(self.database_url, autocommit=True)
        receiver: Receiver | None = None
        read_at = 0.0
        try:
            while True:
                # where and how to reach the eMSP (and whether it is OFFLINE), read again
                # every RECEIVER_REFRESH_S rather than for every claim
                if time.monotonic() - read_at >= RECEIVER_REFRESH_S:
                    receiver, read_at = await self._receiver(conn, emsp), time.monotonic()
                if receiver is None:  # unregistered or OFFLINE: its deliveries wait
                    await asyncio.sleep(EMSPS_REFRESH_S)
                    read_at = 0.0
                    continue
                claimed = await deliveries.claim(
                    conn, emsp, self.policy.claim_size, self.policy.lease_s, receiver.url
                )
                if not claimed:
                    wait_s = await deliveries.next_due_in_s(conn, emsp)
                    await asyncio.sleep(min(IDLE_POLL_S, IDLE_POLL_S if wait_s is None else wait_s))
                    continue
                lanes = asyncio.Semaphore(self.policy.concurrency)
                verdicts = await asyncio.gather(
                    *(self._post(receiver, item, lanes) for item in claimed)
                )
                await deliveries.finish(
                    conn,
                    [
                        self._answered(item, verdict, location)
                        for item, (verdict, location) in zip(claimed, verdicts, strict=True)
                    ],
                )
                if len(claimed) < self.policy.claim_size:
                    await asyncio.sleep(GATHER_S)
        finally:
            await conn.close()

    async def _receiver(self, conn: psycopg.AsyncConnection[Row], emsp: str) -> Receiver | None:
        async with conn.transaction():
            cursor = await conn.execute(
                "SELECT * FROM ocpi_connection_current WHERE partner = %s", (emsp,)
            )
            row = await cursor.fetchone()
            status = await hub_client_info.status_of(conn, emsp)
        if row is None or status is ConnectionStatus.OFFLINE:
            return None
        connection = ocpi_connections.connection_of(row)
        registration = connection.registration
        endpoint = None if registration is None else registration.endpoint("cdrs", "RECEIVER")
        if registration is None or endpoint is None:
            return None
        try:
            token = ocpi_connections.partner_token(self.keyring, connection)
        except PartnerTokenError as exc:
            log.error("deliveries: cannot use the token for %s: %s", emsp, exc)
            return None
        return Receiver(str(endpoint.url), authorization(token, registration.token_unencoded))

    async def _post(
        self, receiver: Receiver, item: Claimed, lanes: asyncio.Semaphore
    ) -> tuple[Verdict, str | None]:
        cpo, emsp = PartyRef.parse(item.cpo), PartyRef.parse(item.emsp)
        headers = {
            "Authorization": receiver.authorization,
            "Content-Type": "application/json",
            "X-Request-ID": item.request_id,  # new per attempt, recorded before the POST
            "X-Correlation-ID": item.correlation_id,
            "OCPI-from-country-code": cpo.country_code,
            "OCPI-from-party-id": cpo.party_id,
            "OCPI-to-country-code": emsp.country_code,
            "OCPI-to-party-id": emsp.party_id,
        }
        async with lanes:
            return await post(self.session, receiver.url, item, headers, self.policy.timeout_s)

    def _answered(self, item: Claimed, verdict: Verdict, location: str | None) -> Answered:
        failures = item.failed_in_a_row + 1
        gives_up = not verdict.delivered and self.policy.retry.gives_up_after(failures)
        retry_in_s = 0.0 if verdict.delivered else self.policy.retry.delay_s(failures)
        if gives_up:
            log.warning(
                "deliveries: %s to %s dead after %d attempts: %s",
                item.cdr_key,
                item.emsp,
                failures,
                verdict.error,
            )
        return Answered(item, verdict, location, retry_in_s, gives_up)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    item: Claimed,
    headers: dict[str, str],
    timeout_s: float,
) -> tuple[Verdict, str | None]:
    """One attempt: the verdict on the eMSP's answer and its Location header."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(
                url, data=item.document, headers=headers, allow_redirects=False
            ) as r:
                content = await r.content.read(RESPONSE_BYTES_MAX + 1)
                if len(content) > RESPONSE_BYTES_MAX:
                    return failed(f"answered more than {RESPONSE_BYTES_MAX} bytes"), None
                location = r.headers.get("Location")
                return judge(r.status, content, location), location
    except TimeoutError:
        return failed(f"no answer within {timeout_s} s"), None
    except (aiohttp.ClientError, ValueError) as exc:
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
        return failed(f"cannot reach {url}: {reason}"), None
