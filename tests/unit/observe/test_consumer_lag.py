"""Consumer lag from the high watermarks the consumer already has (pipeline.observe.worker_http):
against what the worker committed, else the consumer's position; a revoked partition's
progress forgotten. The consumer is a fake of the three calls the endpoint makes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from pipeline.observe.worker_http import Lag, Progress, consumer_lag
from settlement.store.clearing_store import SubmittedRecord

TOPIC = "roamclear.cdr.submitted"


@dataclass
class _Consumer:
    highwaters: dict[TP, int | None]
    positions: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)


@dataclass
class _App:
    consumer: Any


def _record(partition: int, offset: int) -> SubmittedRecord:
    return SubmittedRecord(TOPIC, partition, offset, None, b"k", b"{}", (), None)


def test_lag_counts_from_the_last_committed_offset_else_the_position() -> None:
    consumer = _Consumer(
        {TP(TOPIC, 0): 120, TP(TOPIC, 1): 40, TP(TOPIC, 2): None, TP(TOPIC, 3): 9},
        positions={TP(TOPIC, 1): 35, TP(TOPIC, 3): 9},
    )
    progress = Progress()
    # one batch across partitions 0 and 3: the last offset of each counts
    progress.committed([_record(0, 97), _record(3, 7), _record(0, 99), _record(3, 8)])
    lags = asyncio.run(consumer_lag(_App(consumer), progress))  # type: ignore[arg-type]
    assert lags == [
        Lag(TOPIC, 0, 20),  # highwater 120, next offset 100
        Lag(TOPIC, 1, 5),  # nothing committed here yet: from the position
        Lag(TOPIC, 3, 0),  # partition 2 not fetched yet: no sample
    ]
    assert progress.batches == 1

    progress.forget({TP(TOPIC, 0)})  # revoked: another worker clears it now
    consumer.positions[TP(TOPIC, 0)] = 120
    lags = asyncio.run(consumer_lag(_App(consumer), progress))  # type: ignore[arg-type]
    assert lags[0] == Lag(TOPIC, 0, 0)
