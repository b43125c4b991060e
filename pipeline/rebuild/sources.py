"""What a rebuild reads from the broker: cdr.submitted in broker-time order, and the
reference-data topics.

cdr.submitted is read from the beginning of every partition without a consumer group (no
offsets committed anywhere, nothing the live workers' group sees) and merged by broker
timestamp: of the partitions' next records, the oldest goes first (ties: the lower
partition). Each partition's own order is kept exactly, whatever its timestamps: it is what
decides among records of one CDR key (they share a partition). The archive
(`--from-archive`) is merged by the same rule (`in_time_order`). A
partition ends at the high watermark a fetch response carries, never at ListOffsets LATEST
(the embedded broker answers it wrongly: docs/embedded-broker.md).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.client import (
    consumed_record,
    read_from_beginning,
    records_in_topic,
    start_reader,
)
from pipeline.topics import Topic, topic_name
from schemas.events import (
    AgreementPublished,
    EnvelopeHeader,
    LocationPublished,
    TariffDeleted,
    TariffPublished,
    parse_envelope,
)
from schemas.validation import SchemaInvalid
from settlement.store.clearing_store import SubmittedRecord

log = logging.getLogger("roamclear.rebuild")

FETCH_WAIT_MS = 500  # one fetch's wait for records
STALL_S_MAX = 30.0  # a partition that yields neither records nor its end this long: an error
REFERENCE_TOPICS = (Topic.TARIFF_PUBLISHED, Topic.LOCATION_PUBLISHED, Topic.AGREEMENT_PUBLISHED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ReferenceEnvelope = TariffPublished | TariffDeleted | LocationPublished | AgreementPublished


@dataclass(frozen=True, slots=True)
class ReferenceRecord:
    """A reference-data record and when the broker wrote it."""

    timestamp_ms: int
    topic: Topic
    envelope: ReferenceEnvelope


@dataclass(frozen=True, slots=True)
class UnusableReference:
    """A reference record a rebuild cannot apply (not an envelope of its topic)."""

    where: str
    why: str


def when(record: SubmittedRecord) -> int:
    """The record's broker time in ms (-1 when it has none: it sorts first)."""
    return -1 if record.timestamp_ms is None else record.timestamp_ms


def in_time_order(partitions: Sequence[Iterable[SubmittedRecord]]) -> Iterator[SubmittedRecord]:
    """The records of every partition (given in partition order, each in offset order) in
    the order `submitted_in_time_order` reads the topic: the oldest head first, ties to the
    lower partition; each partition's own order kept whatever its timestamps."""
    return heapq.merge(*partitions, key=when)


async def submitted_in_time_order(
    bootstrap_servers: str, topic: str
) -> AsyncIterator[SubmittedRecord]:
    """Every record of `topic` up to each partition's high watermark, merged by broker time."""
    consumer, partitions = await start_reader(bootstrap_servers, topic)
    try:
        buffers: dict[TopicPartition, deque[SubmittedRecord]] = {tp: deque() for tp in partitions}
        while buffers:
            await _fill(consumer, buffers)
            while buffers and all(buffers.values()):
                tp = min(buffers, key=lambda p: (when(buffers[p][0]), p.partition))
                yield buffers[tp].popleft()
                if not buffers[tp]:
                    break  # refill (or end) that partition before choosing again
    finally:
        await consumer.stop()


async def _fill(
    consumer: AIOKafkaConsumer, buffers: dict[TopicPartition, deque[SubmittedRecord]]
) -> None:
    """Fetch until every partition with an empty buffer has records again or has ended
    (dropped from `buffers`)."""
    deadline = time.monotonic() + STALL_S_MAX
    while empty := [tp for tp, buffer in buffers.items() if not buffer]:
        for tp in empty:
            mark = consumer.highwater(tp)
            if mark is not None and await consumer.position(tp) >= mark:
                del buffers[tp]
        empty = [tp for tp in empty if tp in buffers]
        if not empty:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no records nor end of partitions {empty} in {STALL_S_MAX} s")
        fetched = await consumer.getmany(*empty, timeout_ms=FETCH_WAIT_MS)
        for tp, messages in fetched.items():
            buffers[tp].extend(_submitted(m) for m in messages)
        await asyncio.sleep(0)


def _submitted(message: object) -> SubmittedRecord:
    r = consumed_record(message)
    return SubmittedRecord(
        r.topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value, r.headers, r.unreadable
    )


async def reference_records(
    settings: Settings,
) -> tuple[list[ReferenceRecord], list[UnusableReference]]:
    """Every record of the reference topics, oldest broker time first (ties: the order of
    REFERENCE_TOPICS, then the topic's own order), and those that cannot be applied."""
    assert settings.kafka_bootstrap_servers is not None
    servers = settings.kafka_bootstrap_servers
    usable: list[tuple[int, int, int, ReferenceRecord]] = []
    unusable: list[UnusableReference] = []
    for rank, topic in enumerate(REFERENCE_TOPICS):
        name = topic_name(settings.topic_prefix, topic)
        count = await records_in_topic(servers, name)
        for record in await read_from_beginning(servers, name, count):
            where = f"{name}[{record.partition}]@{record.offset}"
            try:
                envelope: EnvelopeHeader = parse_envelope(record.value or b"")
            except SchemaInvalid as exc:
                unusable.append(UnusableReference(where, f"{exc}: {exc.as_text()}"[:300]))
                continue
            if not isinstance(envelope, ReferenceEnvelope):
                unusable.append(UnusableReference(where, f"a {envelope.type} event"))
                continue
            usable.append(
                (
                    record.timestamp_ms,
                    rank,
                    record.offset,
                    ReferenceRecord(record.timestamp_ms, topic, envelope),
                )
            )
    usable.sort(key=lambda item: item[:3])
    return [item[3] for item in usable], unusable


def moment_of(timestamp_ms: int) -> datetime:
    """A broker timestamp as a UTC datetime (exact: no float on the way)."""
    return _EPOCH + timedelta(milliseconds=timestamp_ms)
