"""A clearing worker whose PostgreSQL or broker has gone exits, and a stopping worker is gone
within `STOP_S_MAX` whatever hangs; its process supervisor restarts it.

Why a watchdog: an idle agent never touches its PostgreSQL connection, and a Kafka client
never gives up on a broker (aiokafka's fetcher, metadata and group-coordinator loops retry
every `retry_backoff_ms`, 100 ms, for ever, logging each failure: about 60 lines a second),
so neither loss showed until the next batch, which on a quiet topic may never come. The
watchdog checks both every `CHECK_INTERVAL_S`:

- PostgreSQL: from a connection of its own, that the clearing connection's backend still
  exists (`pg_stat_activity`: same pid, same start time). The agent's connection is never
  used for it (a query there could land inside a batch's transaction). A backend that has
  gone (terminated, or the server restarted) is fatal at once: that connection never comes
  back. A server out of reach is fatal after `POSTGRES_LOST_S_MAX`.
- the broker: that some broker answers a metadata request (the agent's producer asks); out
  of reach for `BROKER_LOST_S_MAX` is fatal.

A fatal finding logs one line, raises `DependencyLost` in the agent (which crashes the worker,
see pipeline/app.py) and arms the exit deadline.

Why an exit deadline: stopping needs the servers that may be gone. Measured with faust 0.15.3
and aiokafka 0.14.0: a worker whose broker had gone took 61 s to obey SIGTERM, because
aiokafka's consumer, stopped while a fetch sleeps in its retry backoff, lets CancelledError
out of `Fetcher.close` (as in aio-libs/aiokafka#647); faust's consumer thread then never
reports itself stopped, and mode waits its `shutdown_timeout`, 60 s. A flush of a batch to a
dead broker can wait as long. Nothing needs a graceful stop for correctness (unacked events
are delivered again, PostgreSQL rolls back a cut transaction, a replayed event is skipped), so
the worker exits after `STOP_S_MAX` at the latest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from datetime import datetime
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer

from settlement.store.db import Row

log = logging.getLogger("roamclear.liveness")

CHECK_INTERVAL_S = 1.0
CHECK_TIMEOUT_S = 5.0  # one check of one server
POSTGRES_LOST_S_MAX = 10.0  # PostgreSQL out of reach this long: exit
BROKER_LOST_S_MAX = 10.0  # no broker answering this long: exit
STOP_S_MAX = 6.0  # from the start of a stop (or a fatal finding) to the exit, at most
LOG_REPEAT_S = 30.0  # the same aiokafka complaint is logged once per this period


class DependencyLost(RuntimeError):
    """PostgreSQL or the broker has gone (out of reach longer than its `*_LOST_S_MAX`, or the
    clearing connection was closed by the server): the worker exits for its supervisor to
    restart it. Check the server the message names; the events not yet acked are delivered
    again to whichever worker takes the partitions."""


class Watchdog:
    """Checks, while the agent runs, that its PostgreSQL connection and the broker are alive."""

    def __init__(
        self,
        database_url: str,
        connection: psycopg.AsyncConnection[Row],
        producer: AIOKafkaProducer,
    ) -> None:
        self._database_url = database_url
        self._backend_pid = connection.info.backend_pid  # known without a round trip
        self._backend_start: datetime | None = None
        self._producer = producer
        self._probe: psycopg.AsyncConnection[Any] | None = None
        self._out_of_reach_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Run the checks in a task; it ends with `DependencyLost` when one is fatal."""
        self._task = asyncio.ensure_future(self._run())
        return self._task

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})
        if self._probe is not None:
            await self._probe.close()

    async def _run(self) -> None:
        try:
            while True:
                await asyncio.gather(self._check_postgres(), self._check_broker())
                await asyncio.sleep(CHECK_INTERVAL_S)
        except DependencyLost as lost:
            log.error("%s; the worker exits for its supervisor to restart it", lost)
            exit_within(STOP_S_MAX, code=1)
            raise

    async def _check_postgres(self) -> None:
        try:
            row = await asyncio.wait_for(self._backend(), CHECK_TIMEOUT_S)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            if self._probe is not None:
                await self._probe.close()
                self._probe = None  # connect afresh next time
            self._out_of_reach("PostgreSQL", POSTGRES_LOST_S_MAX, exc)
            return
        self._reachable("PostgreSQL")
        started = None if row is None else row[0]
        if self._backend_start is None:
            self._backend_start = started
        if started is None or started != self._backend_start:
            raise DependencyLost(
                f"PostgreSQL closed the clearing connection (backend pid {self._backend_pid})"
            )

    async def _backend(self) -> tuple[Any, ...] | None:
        if self._probe is None or self._probe.closed:
            self._probe = await psycopg.AsyncConnection.connect(
                self._database_url,
                autocommit=True,
                connect_timeout=max(2, round(CHECK_TIMEOUT_S)),
                application_name="roamclear liveness",
            )
        cursor = await self._probe.execute(
            "SELECT backend_start FROM pg_stat_activity WHERE pid = %s", (self._backend_pid,)
        )
        return await cursor.fetchone()

    async def _check_broker(self) -> None:
        try:
            answered = await asyncio.wait_for(
                self._producer.client.force_metadata_update(), CHECK_TIMEOUT_S
            )
        except TimeoutError:
            answered = False
        if answered:
            self._reachable("the broker")
        else:
            self._out_of_reach("the broker", BROKER_LOST_S_MAX, "no broker answered")

    def _out_of_reach(self, server: str, lost_s_max: float, why: object) -> None:
        since = self._out_of_reach_since.setdefault(server, time.monotonic())
        if time.monotonic() - since >= lost_s_max:
            reason = " ".join(str(why).split())  # libpq's messages span lines; a log line not
            raise DependencyLost(f"{server} out of reach for {lost_s_max:.0f} s ({reason})")

    def _reachable(self, server: str) -> None:
        self._out_of_reach_since.pop(server, None)


class _ExitDeadline:
    """Ends the process with `os._exit` when it has not ended by itself: a daemon thread,
    so neither a blocked event loop nor a stuck client library can hold it back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: float | None = None
        self._code = 0

    def arm(self, seconds: float, code: int) -> None:
        with self._lock:
            first = self._at is None
            at = time.monotonic() + seconds
            self._at = at if self._at is None else min(self._at, at)
            self._code = max(self._code, code)
        if first:
            threading.Thread(target=self._wait, name="exit-deadline", daemon=True).start()

    def _wait(self) -> None:
        while True:
            with self._lock:
                assert self._at is not None
                left_s, code = self._at - time.monotonic(), self._code
            if left_s <= 0:
                break
            time.sleep(min(left_s, 0.1))
        log.warning(
            "stopping took longer than %.0f s (a server not answering); exiting now with "
            "code %d: events not yet acked are delivered again",
            STOP_S_MAX,
            code,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_deadline = _ExitDeadline()


def exit_within(seconds: float, code: int) -> None:
    """Make sure the process has exited `seconds` from now, with `code` if it had to be
    ended (the highest code asked for wins)."""
    _deadline.arm(seconds, code)


class QuietRepeats(logging.Filter):
    """Lets a message template through once per `period_s` per logger; the next one that
    passes says how many were held back. aiokafka logs each failed retry of a broker that has
    gone, ten times a second per loop."""

    def __init__(self, period_s: float = LOG_REPEAT_S) -> None:
        super().__init__()
        self.period_s = period_s
        self._last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.period_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        self._last[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} (and {last[1]} more like it before)"
            record.args = None
        return True


def quiet_aiokafka_repeats(period_s: float = LOG_REPEAT_S) -> None:
    """Install `QuietRepeats` on every aiokafka logger (a filter on a logger sees only its
    own records, so each module's logger gets it)."""
    quiet = QuietRepeats(period_s)
    for name in list(logging.Logger.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logging.getLogger(name).addFilter(quiet)
