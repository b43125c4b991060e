"""The order a rebuild clears in: partitions merged by broker time, each partition's own
order kept; batches cut where a reference record comes between two CDR records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from pipeline.rebuild.run import cut_batches
from pipeline.rebuild.sources import in_time_order, when
from settlement.store.clearing_store import SubmittedRecord


def record(partition: int, offset: int, timestamp_ms: int | None) -> SubmittedRecord:
    return SubmittedRecord("t", partition, offset, timestamp_ms, None, b"{}")


def positions(records: Iterable[SubmittedRecord]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


def test_partitions_merge_by_time_and_keep_their_own_order() -> None:
    p0 = [record(0, 0, 10), record(0, 1, 30), record(0, 2, 20)]  # a clock stepped back
    p1 = [record(1, 0, 10), record(1, 1, 25)]
    p2 = [record(2, 0, None)]  # no broker time: first
    merged = positions(in_time_order([p0, p1, p2]))
    assert merged == [(2, 0), (0, 0), (1, 0), (1, 1), (0, 1), (0, 2)]


class Applier:
    """The reference applier's seam: pending reference records by broker time."""

    def __init__(self, times: list[int]) -> None:
        self.times = times
        self.applied: list[tuple[int, int]] = []  # (reference time, records cleared before)
        self.cleared = 0

    def due(self, timestamp_ms: int) -> bool:
        return bool(self.times) and self.times[0] <= timestamp_ms

    def apply_until(self, timestamp_ms: int | None) -> None:
        while self.times and (timestamp_ms is None or self.times[0] <= timestamp_ms):
            self.applied.append((self.times.pop(0), self.cleared))


def test_a_batch_never_spans_a_reference_record() -> None:
    records = [record(0, i, t) for i, t in enumerate([1, 2, 5, 5, 6, 9, 10, 11])]
    applier = Applier([0, 5, 10, 50])

    async def source() -> AsyncIterator[SubmittedRecord]:
        for r in records:
            yield r

    async def run() -> list[list[int]]:
        batches = []
        async for batch in cut_batches(source(), applier, 3):
            batches.append([when(r) for r in batch])
            applier.cleared += len(batch)
        return batches

    assert asyncio.run(run()) == [[1, 2], [5, 5, 6], [9], [10, 11]]
    # each reference record before the first record at or after its time; 50 is left for
    # the end of the rebuild
    assert applier.applied == [(0, 0), (5, 2), (10, 6)]
