"""`roamclear bench deliver`: how fast booked CDRs reach their eMSPs, and whether a dead eMSP
slows the others.

Each phase uses a scratch database and a fresh topic prefix. A simulated stream of N records
(the scenario's usual mix: about nine in ten book, credits among them) for K simulated eMSPs
is cleared by a `roamclear worker` first; then one `roamclear deliver` process starts on
that backlog and delivers every booking to the eMSPs' CDR receivers: one local HTTP sink (a
bare ASGI app under uvicorn, answering 201 and a Location) standing for all K, each under its
own path and token. Each eMSP's connection is recorded as the credentials handshake records it.

- deliveries/s: deliveries made over the time from the first delivery row created (the
  intake of its cdr.rated) to the last eMSP answer, i.e. intake, claim, POST and record;
- p99: from a delivery's creation to its eMSP's 2xx, the same clock (PostgreSQL's);
- with a dead eMSP: the same stream with one eMSP's endpoint a port nothing listens on;
  deliveries/s then counts the other eMSPs' deliveries only.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from pipeline.api.serving import free_port, serving_in_thread
from pipeline.bench.scratch import scratch_database
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_hub_keyring
from pipeline.kafka.admin import create_topics
from pipeline.simulate import ScenarioConfig, build_reference
from pipeline.simulate.scenario import iter_submissions
from pipeline.simulate.send import register, send_stream
from pipeline.topics import topic_specs
from pipeline.workers import DELIVER_COMMAND, worker_processes
from schemas.hub.party import PartyRef
from schemas.ocpi.credentials import Endpoint
from settlement.partner_tokens import seal
from settlement.store import ocpi_connections, ocpi_tokens
from settlement.store.db import connect
from settlement.store.ocpi_connections import ConnectionEvent, Initiator, Registration, RequestIds

DONE_WAIT_S_MAX: Final = 900.0
SEED: Final = 7
_CREATED: Final = (
    b'{"status_code":1000,"status_message":"Success","timestamp":"2026-01-01T00:00:00Z"}'
)


@dataclass(frozen=True, slots=True)
class DeliverBench:
    cdrs: int
    emsps: int
    deliveries: int
    per_s: float
    p99_ms: float
    per_s_with_dead_emsp: float
    created_per_s: float  # the intake's pace alone: deliveries created over their own span


class Sink:
    """Every eMSP's CDR receiver: `POST /e/{CCPID}/cdrs` answers 201 with a Location."""

    def __init__(self) -> None:
        self.received = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the body whole before answering
            message = await receive()
            more = message.get("more_body", False)
        self.received += 1
        location = f"http://sink/{scope['path']}/{self.received}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"location", location)],
            }
        )
        await send({"type": "http.response.body", "body": _CREATED})


def record_receiver(
    settings: Settings, emsp: PartyRef, base_url: str, token: str, *modules: str
) -> str:
    """Record the eMSP's OCPI connection as a credentials handshake would, with its `cdrs`
    RECEIVER at `base_url`/cdrs (and one per module of `modules` likewise), calling it with
    `token`; the token it calls the hub with."""
    assert settings.database_url is not None
    with connect(settings.database_url) as conn:
        hub_token = ocpi_tokens.issue(conn, emsp, ocpi_tokens.TokenKind.C)
        endpoints = tuple(
            Endpoint.model_validate(
                {"identifier": module, "role": "RECEIVER", "url": f"{base_url}/{module}"}
            )
            for module in ("cdrs", *modules)
        )
        ocpi_connections.record(
            conn,
            emsp,
            ConnectionEvent.REGISTERED,
            Initiator.HUB,
            RequestIds(str(uuid.uuid4()), str(uuid.uuid4())),
            Registration(
                version="2.2.1",
                versions_url=f"{base_url}/versions",
                version_url=f"{base_url}/2.2.1",
                endpoints=endpoints,
                roles=(),
                partner_token=seal(load_hub_keyring(settings), str(emsp), token),
                token_unencoded=False,
                hub_token_hash=ocpi_tokens.token_hash(hub_token),
            ),
        )
    return hub_token


def _book(settings: Settings, cdrs: int, emsps: int, log_dir: Path) -> list[PartyRef]:
    """Clear a simulated stream; the eMSPs of its scenario."""
    assert settings.database_url is not None
    config = ScenarioConfig(cdrs=cdrs, emsps=emsps, seed=SEED)
    data = build_reference(config)
    register(settings, data)
    asyncio.run(send_stream(settings, iter_submissions(config, data)))
    with worker_processes(settings, 1, log_dir) as group:
        deadline = time.monotonic() + DONE_WAIT_S_MAX
        while _count(settings, "SELECT count(*) AS n FROM cdr_outcome") < cdrs:
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not decide every CDR in time")
            group.check_alive()
            time.sleep(0.5)
    return [p.party for p in data.partners if p.role.value in ("EMSP", "BOTH")]


def _count(settings: Settings, query: str, *args: object) -> int:
    with connect(role_url(settings, DbRole.READER)) as conn:
        row = conn.execute(query, args).fetchone()
    return 0 if row is None else int(row["n"])


def _phase(
    settings: Settings, cdrs: int, emsps: int, log_dir: Path, dead: bool
) -> tuple[int, float, float, float]:
    """(deliveries to live eMSPs, per s, p99 ms, created per s) for one stream."""
    parties = _book(settings, cdrs, emsps, log_dir)
    sink = Sink()
    with serving_in_thread(sink) as url:
        dead_party = parties[0] if dead else None
        for party in parties:
            code = f"{party.country_code}{party.party_id}"
            base = f"http://127.0.0.1:{free_port()}" if party == dead_party else f"{url}/e/{code}"
            record_receiver(settings, party, base, f"bench-{code}")
        bookings = _count(
            settings,
            "SELECT count(*) AS n FROM ledger_transaction WHERE kind IN ('CHARGE', 'REVERSAL')"
            " AND emsp <> %s",
            str(dead_party or ""),
        )
        with worker_processes(
            settings, 1, log_dir, command=DELIVER_COMMAND, name="deliver"
        ) as group:
            deadline = time.monotonic() + DONE_WAIT_S_MAX
            while (
                _count(
                    settings,
                    "SELECT count(*) AS n FROM cdr_delivery WHERE state = 'DELIVERED'",
                )
                < bookings
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("the deliverer did not deliver every CDR in time")
                group.check_alive()
                time.sleep(0.5)
    with connect(role_url(settings, DbRole.READER)) as conn:
        row = conn.execute(
            """SELECT count(*) AS n,
                      extract(epoch FROM max(delivered_at) - min(created_at)) AS span_s,
                      extract(epoch FROM max(created_at) - min(created_at)) AS created_s,
                      percentile_cont(0.99) WITHIN GROUP (
                          ORDER BY extract(epoch FROM delivered_at - created_at)) * 1000 AS p99
                 FROM cdr_delivery WHERE state = 'DELIVERED'"""
        ).fetchone()
    assert row is not None and row["n"] == bookings
    created_per_s = bookings / max(float(row["created_s"]), 1e-3)
    return bookings, bookings / float(row["span_s"]), float(row["p99"]), created_per_s


def run(settings: Settings, cdrs: int, emsps: int) -> DeliverBench:
    assert settings.kafka_bootstrap_servers is not None and settings.database_url is not None
    figures = []
    with tempfile.TemporaryDirectory(prefix="roamclear-bench-") as tmp:
        for dead in (False, True):
            with scratch_database(settings.database_url) as database_url:
                phase = replace(
                    settings,
                    database_url=database_url,
                    topic_prefix=f"bench{uuid.uuid4().hex[:8]}",
                )
                create_topics(settings.kafka_bootstrap_servers, topic_specs(phase.topic_prefix))
                log_dir = Path(tmp) / ("dead" if dead else "live")
                log_dir.mkdir()
                figures.append(_phase(phase, cdrs, emsps, log_dir, dead))
    (deliveries, per_s, p99, created_per_s), (_, dead_per_s, _, _) = figures
    return DeliverBench(cdrs, emsps, deliveries, per_s, p99, dead_per_s, created_per_s)
