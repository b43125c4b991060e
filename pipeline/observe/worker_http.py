"""The clearing worker's own HTTP endpoint (`roamclear worker --metrics-port N`): /metrics,
/health and /ready, served by aiohttp in the worker's event loop (so /health answering also
says that loop is not blocked). The deliverer (`roamclear deliver --metrics-port N`) serves
the same endpoint with its own registry and readiness (`assigned_readiness`).

- /health: 200 while the process runs its event loop.
- /ready: 200 when the worker has partitions assigned and either committed a clearing batch
  or has nothing to clear (every assigned partition's lag is 0); else 503, with why.
- /metrics: pipeline.observe.metrics.WORKER, the consumer lag per partition, and the
  process's own metrics.

Consumer lag per assigned partition = the high watermark of its last fetch (which the
consumer already has: no ListOffsets request) minus the next offset to clear: the offset after
the last one this worker committed to PostgreSQL, or, before its first batch on that
partition, the consumer's position. `Progress` keeps the former; the agent reports each
committed batch, and a revoked partition is forgotten (another worker clears it now).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import faust
from aiohttp import web
from faust.types import TP
from mode import Service
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pipeline.observe.metrics import WORKER, exposition
from settlement.store.clearing_store import SubmittedRecord

log = logging.getLogger("roamclear.observe")


@dataclass
class Progress:
    """The next offset to clear per partition this worker committed a batch of."""

    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    batches: int = 0

    def committed(self, records: Sequence[SubmittedRecord]) -> None:
        # records of one partition come in offset order, so the last one per partition wins
        self.next_offsets.update({(r.topic, r.partition): r.offset + 1 for r in records})
        self.batches += 1

    def forget(self, partitions: Iterable[TP]) -> None:
        for tp in partitions:
            self.next_offsets.pop((tp.topic, tp.partition), None)


PROGRESS: Final = Progress()  # the process's one clearing agent reports here


@dataclass(frozen=True, slots=True)
class Lag:
    topic: str
    partition: int
    records: int


async def consumer_lag(app: faust.App, progress: Progress) -> list[Lag]:
    """The lag of every assigned partition whose high watermark the consumer has seen."""
    consumer = app.consumer
    lags: list[Lag] = []
    for tp in sorted(consumer.assignment()):
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue  # not fetched yet
        following = progress.next_offsets.get((tp.topic, tp.partition))
        if following is None:
            following = await consumer.position(tp)
        if following is not None:
            lags.append(Lag(tp.topic, tp.partition, max(0, highwater - following)))
    return lags


def readiness(assigned: int, batches: int, lags: Sequence[Lag]) -> tuple[bool, str]:
    """Ready, and why (or why not): see the module docstring.

    >>> readiness(0, 3, [])
    (False, 'no partitions assigned')
    >>> readiness(2, 0, [Lag("t", 0, 0), Lag("t", 1, 5)])
    (False, 'no batch committed yet and 5 records to clear')
    >>> readiness(2, 0, [Lag("t", 0, 0)])
    (False, 'no batch committed yet and 1 partitions not fetched yet')
    >>> readiness(2, 0, [Lag("t", 0, 0), Lag("t", 1, 0)])
    (True, 'idle: nothing to clear')
    """
    if not assigned:
        return False, "no partitions assigned"
    if batches:
        return True, f"{batches} batches committed"
    pending = sum(lag.records for lag in lags)
    if pending:
        return False, f"no batch committed yet and {pending} records to clear"
    if len(lags) < assigned:
        return (
            False,
            f"no batch committed yet and {assigned - len(lags)} partitions not fetched yet",
        )
    return True, "idle: nothing to clear"


# a process's readiness from its assigned partition count and their lags
Readiness = Callable[[int, Sequence[Lag]], tuple[bool, str]]


def clearing_readiness(assigned: int, lags: Sequence[Lag]) -> tuple[bool, str]:
    return readiness(assigned, PROGRESS.batches, lags)


def assigned_readiness(assigned: int, lags: Sequence[Lag]) -> tuple[bool, str]:
    """Ready once the group gave this process partitions (the deliverer: its intake reads
    them from its committed offsets, and its dispatcher needs no partition).

    >>> assigned_readiness(0, [])
    (False, 'no partitions assigned')
    >>> assigned_readiness(3, [Lag("t", 0, 4)])
    (True, '3 partitions assigned, 4 records behind')
    """
    if not assigned:
        return False, "no partitions assigned"
    behind = sum(lag.records for lag in lags)
    return True, f"{assigned} partitions assigned, {behind} records behind"


def _forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    revoked: Iterable[TP] = args[0]  # faust sends the revoked partitions' set
    PROGRESS.forget(revoked)


class WorkerEndpoint(Service):
    """The endpoint as a service of the worker: started and stopped with it."""

    def __init__(
        self,
        app: faust.App,
        host: str,
        port: int,
        registry: CollectorRegistry = WORKER,
        ready_of: Readiness = clearing_readiness,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.faust_app = app
        self.host = host
        self.port = port
        self.registry = registry
        self.ready_of = ready_of
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self.faust_app.on_partitions_revoked.connect(_forget_revoked)
        web_app = web.Application()
        web_app.router.add_get("/health", self._health)
        web_app.router.add_get("/ready", self._ready)
        web_app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("metrics, health and readiness on http://%s:%d", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def _ready(self, request: web.Request) -> web.Response:
        assigned = self._assigned()
        lags = await consumer_lag(self.faust_app, PROGRESS) if assigned else []
        ready, why = self.ready_of(assigned, lags)
        body = {"ready": ready, "reason": why, "partitions": assigned}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        assigned = self._assigned()
        lags = await consumer_lag(self.faust_app, PROGRESS) if assigned else []
        gauges = CollectorRegistry()
        gauges.register(_Snapshot(assigned, lags))
        body = exposition(self.registry, gauges)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _assigned(self) -> int:
        try:
            return len(self.faust_app.consumer.assignment())
        except Exception:  # the consumer not started yet (or stopping): nothing assigned
            return 0


class _Snapshot:
    """The consumer's state at this scrape, as gauges."""

    def __init__(self, assigned: int, lags: Sequence[Lag]) -> None:
        self.assigned = assigned
        self.lags = lags

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "roamclear_consumer_assigned_partitions",
            "Partitions assigned to this worker",
            value=self.assigned,
        )
        lag = GaugeMetricFamily(
            "roamclear_consumer_lag_records",
            "Records between the last fetch's high watermark and the next offset to clear",
            labels=["topic", "partition"],
        )
        for item in self.lags:
            lag.add_metric([item.topic, str(item.partition)], item.records)
        yield lag
