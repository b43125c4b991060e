"""The delivery app, `roamclear deliver`: a faust app of its own consumer group with the
intake agent (cdr.rated and ledger.transactions → delivery rows) and the dispatcher (delivery
rows → POSTs to eMSPs) as a task. A process of its own: an eMSP that answers slowly or not at
all costs the clearing workers nothing, and deliverers scale apart from them.

Crash policy as the clearing worker's: PostgreSQL or the broker gone raises, the process exits
without acking, its supervisor restarts it; the events come again (creating a delivery twice
creates it once) and claimed deliveries are claimed again when their lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, cast

import aiohttp
import faust
import httpx
from faust.types import EventT

from pipeline.app import faust_app
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.delivery import intake
from pipeline.delivery.client_info import ClientInfoService
from pipeline.delivery.dispatcher import DispatchPolicy
from pipeline.hubkeys import load_hub_keyring
from pipeline.observe.deliveries import ObservedDispatcher
from pipeline.topics import CDR_PARTITIONS, Topic, topic_name
from settlement.delivery.retry import RetryPolicy
from settlement.store.db import connect_async

log = logging.getLogger("roamclear.deliveries")

INTAKE_BATCH_MAX: Final = 500
INTAKE_BATCH_WITHIN_S: Final = 0.2
BACKOFF_FACTOR: Final = 2.0


def policy_of(settings: Settings) -> DispatchPolicy:
    return DispatchPolicy(
        retry=RetryPolicy(
            base_s=settings.delivery_backoff_base_s,
            factor=BACKOFF_FACTOR,
            cap_s=settings.delivery_backoff_cap_s,
            attempts_max=settings.delivery_attempts_max,
        ),
        concurrency=settings.delivery_concurrency,
        timeout_s=settings.delivery_timeout_s,
        lease_s=settings.delivery_lease_s,
    )


def delivery_session(policy: DispatchPolicy) -> aiohttp.ClientSession:
    """The HTTP client of the CDR POSTs (aiohttp: its C parser costs a fraction of httpx's
    per request). Idle connections are closed after 2 s, before a typical server's
    keep-alive (5 s) closes one under a request, which would fail that attempt for nothing;
    the ClientInfo calls, a few a minute, keep httpx."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0)
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s, connect=min(5.0, policy.timeout_s))
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


def create_delivery_app(settings: Settings) -> faust.App:
    assert settings.database_url is not None
    app = faust_app(settings, settings.delivery_app_id)
    database_url = role_url(settings, DbRole.DELIVERER)
    announcements = app.topic(
        topic_name(settings.topic_prefix, Topic.CDR_RATED),
        topic_name(settings.topic_prefix, Topic.LEDGER_TRANSACTIONS),
        partitions=CDR_PARTITIONS,
        value_serializer="raw",
        key_serializer="raw",
    )
    policy = policy_of(settings)

    @app.agent(announcements, name="delivery-intake")
    async def delivery_intake(stream: faust.StreamT[bytes]) -> None:
        conn = await connect_async(database_url)
        try:
            async for events in cast(faust.Stream[bytes], stream).noack_take(
                INTAKE_BATCH_MAX, within=INTAKE_BATCH_WITHIN_S
            ):
                batch = cast(Sequence[EventT[bytes]], events)
                found = [intake.announced(event.value) for event in batch]
                created = await intake.take(conn, [a for a in found if a is not None])
                for event in batch:
                    await stream.ack(event)
                if created:
                    log.info("deliveries: %d new", created)
        finally:
            await conn.close()

    async def dispatch() -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per call otherwise
        keyring = load_hub_keyring(settings)
        async with (
            delivery_session(policy) as session,
            httpx.AsyncClient(
                timeout=httpx.Timeout(policy.timeout_s), follow_redirects=False
            ) as client,
        ):
            try:
                info = ClientInfoService(keyring, client, settings.still_alive_s, policy.timeout_s)
                await ObservedDispatcher(database_url, keyring, policy, session, info).run()
            except Exception as exc:
                log.exception("deliveries: the dispatcher failed")
                await app.crash(exc)
                raise

    app.task(dispatch)
    return app
