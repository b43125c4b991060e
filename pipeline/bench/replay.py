"""`roamclear bench replay`: archived CDRs replayed per second (shadow, nothing written).

The simulated stream `bench clearing` uses (valid CDRs, duplicates, conflicts, credits,
malformed and schema-invalid records) is cleared into a scratch database through the
worker's own batch (`pipeline.clearing.batch.commit_batch`: archive, decide, book, one
outcome per record; the broker left out, not timed). Then the timed part: `replay
--reference as-booked` over the whole range, as `roamclear replay` runs it: the records and
their outcomes read from the archive, decoded, decided again by `decide_batch`, compared.

Reported: records per second of wall time (PostgreSQL reads included) and of the process's
CPU time, next to the live path's decode + decide CPU time per record over the same
records (what a replay must at least match per core; it does both, plus its reads).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from pipeline.bench.clearing import HUB, KEYRING, TOPIC, simulated_records
from pipeline.bench.scratch import scratch_database
from pipeline.clearing.batch import Clearing, commit_batch, decode_batch
from pipeline.clearing.events import EventWriter, OutputRecord
from pipeline.clearing.refcache import ReferenceCache
from pipeline.gctune import tuned_gc
from pipeline.hubkeys import record_proof_keys
from pipeline.simulate import ScenarioConfig, build_reference
from settlement.clearing.batch import decide_batch
from settlement.clearing.decode import decode
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.replay.model import Change, Reference, ReferenceMode
from settlement.store import reference_store
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import connect, connect_async
from settlement.store.replay import ReplayRange, replay

CLEAR_BATCH: Final = 1_000  # records per clearing batch while loading (not timed)


@dataclass(frozen=True, slots=True)
class ReplayBench:
    cdrs: int
    same: int  # records the replay found unchanged (all of them, as-booked)
    wall_s: float
    cpu_s: float
    live_cpu_s: float  # decode + decide of the same records, the live path's functions

    @property
    def per_s(self) -> float:
        return self.cdrs / self.wall_s

    @property
    def cpu_per_s(self) -> float:
        return self.cdrs / self.cpu_s

    @property
    def live_per_s(self) -> float:
        return self.cdrs / self.live_cpu_s


def _records(cdrs: int, at: datetime) -> tuple[ScenarioConfig, list[SubmittedRecord]]:
    config = ScenarioConfig(cdrs=cdrs, seed=1)
    return config, simulated_records(config, build_reference(config), int(at.timestamp() * 1000))


def _load_reference(url: str, config: ScenarioConfig) -> None:
    data = build_reference(config)
    with connect(url) as conn:
        for partner in data.partners:
            reference_store.add_partner(conn, partner.party, partner.role, partner.name)
        reference_store.add_tariffs(conn, data.tariffs, datetime.now(UTC) - timedelta(days=1))
        reference_store.add_locations(conn, data.locations)
        reference_store.add_agreements(conn, data.agreements)
        conn.commit()


async def _clear(url: str, records: Sequence[SubmittedRecord]) -> None:
    """The records through the worker's batch, the broker left out (nothing is sent)."""

    async def send(_: Sequence[OutputRecord]) -> None:
        return None

    keys = record_proof_keys(KEYRING)
    writer = EventWriter("bench", HUB)
    clearing = Clearing(ReferenceCache(), PlausibilityLimits(), writer, send, keys)
    conn = await connect_async(url)
    try:
        await prepare(conn)
        for start in range(0, len(records), CLEAR_BATCH):
            batch = records[start : start + CLEAR_BATCH]
            await commit_batch(conn, batch, await decode_batch(batch), clearing)
    finally:
        await conn.close()


def _live_cpu_s(url: str, records: Sequence[SubmittedRecord]) -> float:
    """CPU seconds of decode + decide (`bench clearing`'s steps) over the same records."""
    with connect(url) as conn:
        refs = reference_store.load_snapshot(conn)
    keys, limits, now = record_proof_keys(KEYRING), PlausibilityLimits(), datetime.now(UTC)
    with tuned_gc():
        started = time.process_time()
        decoded = [decode(r.value) for r in records]
        decide_batch(list(zip(records, decoded, strict=True)), now, limits, keys, refs, {})
        return time.process_time() - started


def run(
    database_url: str, cdrs: int, progress: Callable[[str, int], None] = lambda *_: None
) -> ReplayBench:
    at = datetime.now(UTC)
    config, records = _records(cdrs, at)
    with scratch_database(database_url) as url:
        _load_reference(url, config)
        asyncio.run(_clear(url, records))
        _live_cpu_s(url, records)  # warm-up: both timed runs find the tariffs compiled
        progress("loaded", len(records))
        selected = ReplayRange(TOPIC, at - timedelta(seconds=1), at + timedelta(seconds=1))
        keys, limits = record_proof_keys(KEYRING), PlausibilityLimits()
        same = 0
        with connect(url) as conn, tuned_gc():
            wall, cpu = time.perf_counter(), time.process_time()
            for verdict in replay(
                conn,
                selected,
                Reference(ReferenceMode.AS_BOOKED),
                keys,
                limits,
                lambda n: progress("replayed", n),
            ):
                same += verdict.change is Change.SAME
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        live = _live_cpu_s(url, records)
    return ReplayBench(len(records), same, wall, cpu, live)
