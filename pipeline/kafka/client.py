"""Producing and reading raw records with aiokafka (no faust): CLI publishing, demo, tests.

Producers use acks=all without idempotence, because the embedded broker has no
InitProducerId; exactly-once effect comes from idempotent sinks and deterministic ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

LINGER_MS = 5
FETCH_WAIT_S_MAX = 0.5


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed record, with where the broker put it (the basis of our own offset index)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def new_producer(bootstrap_servers: str, **overrides: object) -> AIOKafkaProducer:
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": LINGER_MS,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def produce(
    bootstrap_servers: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> int:
    """Send (key, value) pairs and wait until the broker acknowledged every one."""
    producer = new_producer(bootstrap_servers)
    await producer.start()
    count = 0
    try:
        futures = []
        for key, value in records:
            futures.append(await producer.send(topic, value=value, key=key))
            count += 1
        for future in futures:
            await future
    finally:
        await producer.stop()
    return count


async def read_from_beginning(
    bootstrap_servers: str,
    topic: str,
    count: int,
    timeout_s: float = 30.0,
    until: Callable[[Sequence[Record]], bool] | None = None,
) -> list[Record]:
    """Read `count` records (or until `until(records)` holds) from the start of every
    partition, without a consumer group.

    We stop at a count rather than at the end offsets, because the embedded broker reports
    wrong "latest" offsets (see ../shared/notes/embedded-broker.md).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # new topic: metadata not cached yet
            partitions = consumer.partitions_for_topic(topic) or set()
        assignment = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=int(FETCH_WAIT_S_MAX * 1000))
            for messages in batches.values():
                records.extend(_record(message) for message in messages)
            if until is not None and until(records):
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def _record(message: object) -> Record:
    headers: Sequence[tuple[str, bytes]] = getattr(message, "headers", ()) or ()
    return Record(
        topic=message.topic,  # type: ignore[attr-defined]
        partition=message.partition,  # type: ignore[attr-defined]
        offset=message.offset,  # type: ignore[attr-defined]
        timestamp_ms=message.timestamp,  # type: ignore[attr-defined]
        key=message.key,  # type: ignore[attr-defined]
        value=message.value,  # type: ignore[attr-defined]
        headers=tuple(headers),
    )
