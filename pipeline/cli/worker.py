"""`roamclear worker`: one clearing worker process (start more for more partitions)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import faust
import typer
import uvloop

from pipeline.agents import liveness
from pipeline.app import create_app
from pipeline.cli.common import MetricsHostOpt, MetricsPortOpt, live_settings, metrics_address
from pipeline.config import Settings
from pipeline.gctune import tune_gc
from pipeline.kafka.admin import create_topics
from pipeline.observe.logs import logging_config
from pipeline.observe.worker_http import WorkerEndpoint
from pipeline.topics import topic_specs


def worker(
    loglevel: Annotated[str, typer.Option(help="crit, error, warn, info or debug")] = "warn",
    passthrough_to: Annotated[
        str | None, typer.Option(hidden=True, help="baseline: forward to this topic instead")
    ] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = None,
) -> None:
    """Run the clearing pipeline: cdr.submitted → PostgreSQL ledger, rated, rejected; and
    session.events → sessions in PostgreSQL.

    Workers in the same consumer group split the partitions; SIGTERM stops one within
    seconds. A worker that loses PostgreSQL or the broker exits with code 1, for its
    supervisor to restart it (docs/clearing.md, "When a server goes"). Metrics, health and
    readiness: docs/observability.md.
    """
    settings = live_settings()
    assert settings.kafka_bootstrap_servers is not None
    settings.home.mkdir(parents=True, exist_ok=True)
    create_topics(settings.kafka_bootstrap_servers, topic_specs(settings.topic_prefix))
    app = create_app(settings, with_passthrough=passthrough_to)
    tune_gc()
    use_uvloop(settings)
    liveness.quiet_aiokafka_repeats()
    address = metrics_address(settings, metrics_port, metrics_host)
    services = [] if address is None else [WorkerEndpoint(app, *address)]
    BoundedStopWorker(app, *services, loglevel=loglevel, quiet=True).execute_from_commandline()


class BoundedStopWorker(faust.Worker):
    """faust's worker, gone within `liveness.STOP_S_MAX` of being told to stop (SIGTERM,
    SIGINT, or a crash): its graceful steps wait on servers that may have gone, up to 60 s.
    Its log lines are roamclear's (`ROAMCLEAR_LOG_FORMAT`, secrets redacted:
    pipeline.observe.logs), for `roamclear worker` and `roamclear deliver` alike."""

    def __init__(
        self, app: faust.App, *services: Any, loglevel: str = "warn", **kwargs: Any
    ) -> None:
        kwargs.setdefault("logging_config", logging_config(Settings.from_env(), loglevel))
        super().__init__(app, *services, loglevel=loglevel, **kwargs)

    async def on_stop(self) -> None:
        liveness.exit_within(liveness.STOP_S_MAX, code=1 if self.crash_reason else 0)
        await super().on_stop()


def use_uvloop(settings: Settings) -> None:
    """libuv's event loop: faust creates futures and callbacks for every consumed message,
    and uvloop runs them in C. `ROAMCLEAR_EVENT_LOOP=asyncio` (Settings.event_loop) keeps the
    standard loop (for comparison, or where uvloop misbehaves)."""
    if settings.event_loop == "uvloop":
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def register(root: typer.Typer) -> None:
    root.command("worker")(worker)
