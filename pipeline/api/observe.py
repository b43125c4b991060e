"""`roamclear api`'s /health, /ready and /metrics (docs/observability.md).

- GET /health: 200 while the process serves HTTP.
- GET /ready: 200 when PostgreSQL answers with every packaged migration applied and a broker
  answers (pipeline.observe.probes), else 503; the body says which check failed and why.
- GET /metrics: the Prometheus text format: what the API counts (ingest rejections), the
  process's own metrics, and, read from PostgreSQL at this scrape, the CDR deliveries by
  state, the closer's recorded runs and the statements (closed batches). With PostgreSQL
  away the scrape still answers, with `roamclear_database_up 0` and without those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import psycopg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from psycopg_pool import ConnectionPool, PoolTimeout

from pipeline.observe.metrics import API, exposition
from pipeline.observe.probes import broker_problem, database_problem
from settlement.store import observed

router = APIRouter(tags=["operations"])
DELIVERY_STATES = ("PULL", "PENDING", "RETRYING", "DELIVERED", "DEAD")  # cdr_delivery.state
RUN_STATES = ("CLOSED", "FAILED")  # settlement_run.state


@router.get("/health", summary="The process is up")
def health() -> dict[str, str]:
    return {"status": "up"}


@router.get("/ready", summary="PostgreSQL (with current migrations) and the broker answer")
async def ready(request: Request) -> JSONResponse:
    pool: ConnectionPool[Any] = request.app.state.finance_pool
    database, broker = await asyncio.gather(
        asyncio.to_thread(database_problem, pool),
        broker_problem(request.app.state.kafka_bootstrap_servers),
    )
    checks = {"database": database or "ok", "broker": broker or "ok"}
    is_ready = database is None and broker is None
    return JSONResponse({"ready": is_ready, "checks": checks}, status_code=200 if is_ready else 503)


@router.get("/metrics", summary="Prometheus metrics (text format)")
def metrics(request: Request) -> Response:
    pool: ConnectionPool[Any] = request.app.state.finance_pool
    scraped = CollectorRegistry()
    scraped.register(_FromDatabase(pool))
    return Response(exposition(API, scraped), media_type=CONTENT_TYPE_LATEST)


class _FromDatabase:
    """The database's counts at this scrape (one pooled connection, three aggregates)."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def collect(self) -> Iterable[Metric]:
        try:
            with self.pool.connection() as conn:
                deliveries = observed.delivery_states(conn)
                runs = observed.closer_runs(conn)
                statements = observed.closed_batches(conn)
        except (PoolTimeout, psycopg.Error, OSError):
            yield _gauge("roamclear_database_up", "PostgreSQL answered this scrape", 0)
            return
        yield _gauge("roamclear_database_up", "PostgreSQL answered this scrape", 1)
        by_state = GaugeMetricFamily(
            "roamclear_deliveries", "CDR deliveries to eMSPs by state, now", labels=["state"]
        )
        for state in DELIVERY_STATES:
            by_state.add_metric([state], deliveries.get(state, 0))
        yield by_state
        yield from _closer(runs)
        closed = CounterMetricFamily(
            "roamclear_statements",
            "Settlement batches closed (one partner statement each), all closers",
        )
        closed.add_metric([], statements)
        yield closed


def _closer(runs: list[observed.CloserRuns]) -> Iterable[Metric]:
    counted = {r.state: r for r in runs}
    recorded = CounterMetricFamily(
        "roamclear_closer_recorded_runs",
        "Settlement runs recorded in PostgreSQL by state (closes that closed batches, failures)",
        labels=["state"],
    )
    last = GaugeMetricFamily(
        "roamclear_closer_last_run_timestamp_seconds",
        "When the last recorded settlement run of each state finished (Unix time)",
        labels=["state"],
    )
    for state in RUN_STATES:
        found = counted.get(state)
        recorded.add_metric([state], found.runs if found else 0)
        if found is not None:
            last.add_metric([state], found.last_finished_at.timestamp())
    yield recorded
    yield last


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
