"""Producing and reading raw records with aiokafka (no faust): CLI publishing, demo, tests.

Producers use acks=all without idempotence, because the embedded broker has no
InitProducerId; exactly-once effect comes from idempotent sinks and deterministic ids.

Bulk producers (the clearing agent's output, the simulator) go through `send_records`, which
fills one record batch per partition itself: `producer.send` costs about 40 µs of CPU per
record (a future and an accumulator pass each), a filled batch about 8 µs.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from pipeline.kafka.hardened import harden

LINGER_MS = 5
FETCH_WAIT_S_MAX = 0.5
# Bytes per record batch: far below brokers' default 1 MiB message.max.bytes, large enough
# that a thousand 2 KB CDR events take a handful of batches (aiokafka's default is 16 KiB).
BATCH_BYTES_MAX: Final = 256 * 1024
_PARTITIONER: Final = DefaultPartitioner()

Headers = list[tuple[str, bytes]]
# Headers for a record from its topic and value: the hub's proof on cdr.submitted records
# (pipeline.hubkeys.HubSigner).
Signer = Callable[[str, bytes], Headers]


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
    unreadable: str | None = None  # why aiokafka could not read it (pipeline.kafka.hardened)


def new_producer(bootstrap_servers: str, **overrides: object) -> AIOKafkaProducer:
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": LINGER_MS,
        "max_batch_size": BATCH_BYTES_MAX,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def send_records(
    producer: AIOKafkaProducer,
    records: Iterable[tuple[str, bytes | None, bytes]],
    sign: Signer | None = None,
) -> list[asyncio.Future[object]]:
    """Queue (topic, key, value) records, partitioned as `producer.send` partitions them
    (murmur2 of the key, as the Java client; a random partition without a key) and in their
    order within each partition; returns one future per batch, done when the broker acked it.
    With `sign`, each record carries the headers it returns.
    """
    partitions: dict[str, list[int]] = {}
    grouped: defaultdict[tuple[str, int], list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for topic, key, value in records:
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        ids = partitions[topic]
        grouped[(topic, _PARTITIONER(key, ids, ids))].append((key, value))
    futures: list[asyncio.Future[object]] = []
    for (topic, partition), items in grouped.items():
        batch = producer.create_batch()
        for key, value in items:
            headers = [] if sign is None else sign(topic, value)
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    # larger than a batch: alone, within the producer's max_request_size
                    futures.append(
                        await producer.send(
                            topic, value, key=key, partition=partition, headers=headers
                        )
                    )
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def send_located(
    producer: AIOKafkaProducer,
    records: Sequence[tuple[str, bytes | None, bytes]],
    sign: Signer | None = None,
) -> list[tuple[int, int]]:
    """Send (topic, key, value) records as `send_records` does, wait until the broker acked
    every one, and return where each went: (partition, offset), in the records' order.

    A batch's ack carries its base offset; its records follow one by one from there.
    """
    partitions: dict[str, list[int]] = {}
    grouped: defaultdict[tuple[str, int], list[int]] = defaultdict(list)
    for index, (topic, key, _) in enumerate(records):
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        ids = partitions[topic]
        grouped[(topic, _PARTITIONER(key, ids, ids))].append(index)
    sent: list[tuple[asyncio.Future[object], int, list[int]]] = []
    for (topic, partition), indexes in grouped.items():
        batch, members = producer.create_batch(), list[int]()
        for index in indexes:
            _, key, value = records[index]
            headers = [] if sign is None else sign(topic, value)
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                if members:
                    sent.append((await producer.send_batch(batch, topic, partition=partition),
                                 partition, members))  # fmt: skip
                batch, members = producer.create_batch(), list[int]()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    # larger than a batch: alone, within the producer's max_request_size
                    alone = await producer.send(
                        topic, value, key=key, partition=partition, headers=headers
                    )
                    sent.append((alone, partition, [index]))
                    continue
            members.append(index)
        if members:
            sent.append((await producer.send_batch(batch, topic, partition=partition),
                         partition, members))  # fmt: skip
    acked = await asyncio.gather(*(future for future, _, _ in sent))
    located: list[tuple[int, int] | None] = [None] * len(records)
    for metadata, (_, partition, members) in zip(acked, sent, strict=True):
        base: int = metadata.offset  # type: ignore[attr-defined]
        for position, index in enumerate(members):
            located[index] = (partition, base + position)
    assert all(place is not None for place in located), "a record was not sent"
    return [place for place in located if place is not None]


async def produce(
    bootstrap_servers: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    sign: Signer | None = None,
) -> int:
    """Send (key, value) pairs and wait until the broker acknowledged every one."""
    producer = new_producer(bootstrap_servers)
    await producer.start()
    try:
        batch = [(topic, key, value) for key, value in records]
        await asyncio.gather(*await send_records(producer, batch, sign))
    finally:
        await producer.stop()
    return len(batch)


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
    consumer, _ = await start_reader(bootstrap_servers, topic)
    try:
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=int(FETCH_WAIT_S_MAX * 1000))
            for messages in batches.values():
                records.extend(consumed_record(message) for message in messages)
            if until is not None and until(records):
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def start_reader(
    bootstrap_servers: str, topic: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer without a group (it commits nothing), hardened, assigned every
    partition of `topic` from its beginning; the caller stops it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    harden(consumer)
    try:
        assignment = await _partitions(consumer, topic)
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
    except BaseException:
        await consumer.stop()
        raise
    return consumer, assignment


def consumed_record(message: object) -> Record:
    headers: Sequence[tuple[str, bytes]] = getattr(message, "headers", ()) or ()
    return Record(
        topic=message.topic,  # type: ignore[attr-defined]
        partition=message.partition,  # type: ignore[attr-defined]
        offset=message.offset,  # type: ignore[attr-defined]
        timestamp_ms=message.timestamp,  # type: ignore[attr-defined]
        key=message.key,  # type: ignore[attr-defined]
        value=message.value,  # type: ignore[attr-defined]
        headers=tuple(headers),
        unreadable=getattr(message, "unreadable", None),
    )


async def records_in_topic(bootstrap_servers: str, topic: str, timeout_s: float = 5.0) -> int:
    """How many records the topic holds: the sum of its partitions' high watermarks.
    Assumes the log starts at offset 0 (no retention deleted anything), true for roamclear's
    topics on both brokers unless retention is configured."""
    marks = await high_watermarks(bootstrap_servers, [topic], timeout_s)
    return sum(marks.values())


async def high_watermarks(
    bootstrap_servers: str, topics: Sequence[str], timeout_s: float = 5.0
) -> dict[TopicPartition, int]:
    """The high watermark of every partition of `topics`, taken from fetch responses
    (`consumer.highwater`), never from ListOffsets LATEST, which the embedded broker answers
    wrongly."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    harden(consumer)
    try:
        partitions = [tp for topic in topics for tp in await _partitions(consumer, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=100, max_records=1)
            marks = {tp: consumer.highwater(tp) for tp in partitions}
            if all(mark is not None for mark in marks.values()):
                return {tp: mark for tp, mark in marks.items() if mark is not None}
        raise TimeoutError(
            f"no high watermark for every partition of {', '.join(topics)} in {timeout_s} s"
        )
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, from fresh cluster metadata (the consumer's own cache only
    knows topics it subscribed to)."""
    metadata = await consumer._client.fetch_all_metadata()
    partitions = metadata.partitions_for_topic(topic) or set()
    if not partitions:
        raise LookupError(f"topic {topic} does not exist (create it: roamclear topics create)")
    return [TopicPartition(topic, partition) for partition in sorted(partitions)]
