"""A consumer group's lag per partition, as an operator asks for it (`roamclear status`):
the offsets the group committed to the broker against the partitions' high watermarks.

Committed offsets come from the broker's group coordinator (OffsetFetch), through an aiokafka
consumer of the group that never joins it (`committed(tp)` of assigned partitions: it reads
offsets, commits nothing). Not the admin client's `list_consumer_group_offsets`: its newer
OffsetFetch version is one the embedded broker answers in a form aiokafka cannot decode (the
connection drops). High watermarks come from fetch responses
(pipeline.kafka.client.high_watermarks), never ListOffsets LATEST, which the embedded broker
answers wrongly. faust commits a worker's acked offsets every few seconds, so this lag can
run a few seconds behind what PostgreSQL already holds (the worker's own
`roamclear_consumer_lag_records` counts from its last PostgreSQL commit).

    >>> PartitionLag("roamclear.cdr.submitted", 3, committed=None, high_watermark=12).records
    12
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.kafka.client import high_watermarks


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # the group's next offset to read; None: it never committed here
    high_watermark: int

    @property
    def records(self) -> int:
        """Records the group has not committed yet (all of them if it never committed)."""
        return max(0, self.high_watermark - (self.committed or 0))

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "high_watermark": self.high_watermark,
            "lag": self.records,
        }


async def group_lag(
    bootstrap_servers: str, group_id: str, topics: Sequence[str], timeout_s: float = 5.0
) -> list[PartitionLag]:
    """Every partition of `topics`, in order, with the group's committed offset and lag."""
    marks = await high_watermarks(bootstrap_servers, topics, timeout_s)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,  # reads the group's offsets, never moves them
        request_timeout_ms=int(timeout_s * 1000),
        client_id="roamclear-status",
    )
    await consumer.start()
    try:
        consumer.assign(list(marks))
        committed = {tp: await consumer.committed(tp) for tp in marks}
    finally:
        await consumer.stop()
    return [
        PartitionLag(tp.topic, tp.partition, committed.get(tp), mark)
        for tp, mark in sorted(marks.items(), key=_order)
    ]


def _order(item: tuple[TopicPartition, int]) -> tuple[str, int]:
    return item[0].topic, item[0].partition
