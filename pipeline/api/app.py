"""The HTTP application: ``create_app(settings)`` (FastAPI; OpenAPI at /docs).

It mounts the finance API (pipeline.api.finance, the missing-CDR report of
pipeline.api.sessions, the CDR deliveries of pipeline.api.deliveries) and the OCPI interface
(pipeline.ocpi: versions and the modules in `pipeline.ocpi.modules.MODULES`, whose accepted
objects go to the broker through one `Publisher`, started on first use; the CDRs receiver
has a producer, a batch loop and a connection of its own: pipeline.ocpi.cdr_ingest), and
holds one PostgreSQL connection pool (as `roamclear_api`), opened when the app starts and
closed when it stops (nothing connects at import), and the hub's keyring (statement seals;
the partners' OCPI tokens, settlement.partner_tokens), loaded when the app is created
(pipeline.hubkeys). With PostgreSQL down a request answers 503 with ``Retry-After`` within
``POOL_WAIT_S_MAX`` (pipeline.api.errors; under /ocpi in the OCPI envelope); once it is
back, the pool replaces its broken connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from fastapi import FastAPI
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool

from pipeline.api import deliveries, disputes, errors, finance, observe, trace
from pipeline.api import sessions as finance_sessions
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import HubSigner, load_hub_keyring
from pipeline.ocpi import cdrs, versions
from pipeline.ocpi import errors as ocpi_errors
from pipeline.ocpi.auth import CallerCache
from pipeline.ocpi.fastlane import LanedFastAPI, Routes
from pipeline.ocpi.limits import Rate, RateLimiter, parse_rates
from pipeline.ocpi.modules import MODULES
from pipeline.ocpi.publisher import Publisher
from pipeline.ocpi.registration import HubIdentity
from schemas.base import loads_exact
from settlement.batches.seal import SealKeys

POOL_SIZE_MAX: Final = 8
POOL_WAIT_S_MAX: Final = 2.0
"""A request waits at most this long for a pooled connection, then answers 503."""
POOL_WAITING_MAX: Final = 64
"""Requests queued for a connection beyond this are refused at once (503)."""
CONNECT_TIMEOUT_S: Final = 2
"""One connection attempt gives up after this (an unreachable host, not a refused port)."""


def _exact_json(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(loads_exact, conn)  # jsonb numbers as Decimal, as settlement.store.db does


def create_app(settings: Settings) -> FastAPI:
    """The app for ``settings`` (its ``database_url`` must name a server)."""
    database_url = role_url(settings, DbRole.API)
    # read once: statement seals, partners' OCPI tokens, the proof on what the API publishes
    keyring = load_hub_keyring(settings)
    seal_keys = SealKeys.from_keyring(keyring)
    hub_identity = HubIdentity.from_settings(settings)  # what the credentials handshake presents
    # what the OCPI receivers accept, to the broker (started on first use)
    publisher = Publisher(
        settings.kafka_bootstrap_servers, settings.topic_prefix, HubSigner(keyring)
    )
    # the CDR receiver's batch loop, producer and connection (started with the app; both
    # servers reached lazily, so the app starts while the broker is away)
    cdr_ingest = cdrs.new_ingest(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=POOL_SIZE_MAX,
            open=True,
            kwargs={
                "row_factory": dict_row,
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
            configure=_exact_json,
            # a connection broken by a PostgreSQL restart is replaced, not handed out
            check=ConnectionPool.check_connection,
            timeout=POOL_WAIT_S_MAX,
            max_waiting=POOL_WAITING_MAX,
        )
        app.state.finance_pool = pool
        app.state.seal_keys = seal_keys
        app.state.publisher = publisher
        app.state.cdr_ingest = cdr_ingest
        if cdr_ingest is not None:
            cdr_ingest.start()
        try:
            yield
        finally:
            if cdr_ingest is not None:
                await cdr_ingest.stop()
            await publisher.close()
            pool.close()

    # the lane and the request ids in front of FastAPI (pipeline.ocpi.fastlane)
    fast_lane: Routes = {("POST", cdrs.CDRS_PATH): cdrs.post_cdr}
    app = LanedFastAPI(
        fast_lane,
        title="roamclear",
        summary="Clearing and settlement back office of an EV-charging roaming hub",
        lifespan=lifespan,
    )
    app.include_router(finance.router)
    app.include_router(finance_sessions.router)
    app.include_router(deliveries.router)
    app.include_router(trace.router)
    app.include_router(disputes.router)
    app.include_router(observe.router)  # /health, /ready, /metrics
    app.include_router(versions.router)
    for module in MODULES:
        app.include_router(module.router)
    app.state.ocpi_modules = MODULES
    app.state.public_url = settings.public_url
    app.state.kafka_bootstrap_servers = settings.kafka_bootstrap_servers  # /ready checks it
    app.state.hub_identity = hub_identity
    app.state.hub_keyring = keyring
    app.state.session_stale_h = settings.session_stale_h
    app.state.ocpi_callers = CallerCache()
    app.state.ocpi_rate = RateLimiter(
        Rate(settings.ocpi_requests_per_s, settings.ocpi_burst),
        parse_rates(settings.ocpi_rate_limits),
    )
    app.state.fast_lane = fast_lane
    errors.install(app)
    ocpi_errors.install(app)
    return app
