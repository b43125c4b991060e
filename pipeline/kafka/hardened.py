"""A consumer that no record can stop: aiokafka's fetcher, made to survive the batches its
record parser cannot read.

aiokafka reads every record batch itself, lazily, while `getmany` drains a fetch: the C
extension's `DefaultRecordBatch._read_msg` (aiokafka/record/_crecords/default_records.pyx)
decodes each header name as UTF-8 and raises UnicodeDecodeError on one that is not; the pure
Python reader (`_DefaultRecordBatchPy.__next__`) raises CorruptRecordException for the same
record; a CRC mismatch, a corrupt compressed payload or a codec it lacks raise in
`PartitionRecords._unpack_records` as well. Any of them escapes `getmany`, so whoever reads
the partition (the faust worker) fails on that record on every restart.

`harden(consumer)` makes the consumer's fetcher a `HardenedFetcher` right after
`consumer.start()` (aiokafka builds its Fetcher inside `start()`, with no way to pass a
subclass; the subclass only overrides methods, and nothing is fetched before the consumer
subscribes). Its batches are unpacked by `HardenedPartitionRecords`: the library's own loop,
but a batch the library fails on ends the drain with an `_UnreadableBatch` mark instead of
an exception. `fetched_records` then fetches that batch again as raw bytes, reads it with
`pipeline.kafka.rawbatch` (records that are whole come back as usual, the others with
`unreadable` set, one per offset) and moves the position past it. Both parsers (C and
Python) are covered: whatever either raises, the mark is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition, errors
from aiokafka.consumer.fetcher import READ_COMMITTED, Fetcher, FetchResult, PartitionRecords
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import ConsumerRecord

from pipeline.kafka.rawbatch import RecoveredRecord, recover
from pipeline.observe.logs import record_fields

log = logging.getLogger("roamclear.kafka")


@dataclass(frozen=True, slots=True)
class _UnreadableBatch:
    """Where aiokafka failed: the first offset it did not return, and why."""

    offset: int
    failure: str


def _failure(exc: BaseException) -> str:
    return f"aiokafka could not read it ({type(exc).__name__}: {exc})"[:500]


class HardenedPartitionRecords(PartitionRecords):  # type: ignore[misc]
    """aiokafka's `PartitionRecords._unpack_records`, with every step that parses a batch
    guarded: on a failure the drain stops at the batch's first undelivered offset with an
    `_UnreadableBatch` mark (the position stays there until the batch is recovered)."""

    @classmethod
    def of(cls, records: PartitionRecords) -> HardenedPartitionRecords:
        """The same fetched data, not yet unpacked, read by this class."""
        return cls(
            records._tp,
            records._records,
            records._aborted_transactions,
            records.next_fetch_offset,
            records._key_deserializer,
            records._value_deserializer,
            records._check_crcs,
            records._isolation_level,
        )

    def _unpack_records(self) -> Iterator[Any]:
        tp = self._tp
        records = self._records
        while records.has_next():
            try:
                batch = records.next_batch()
                if self._check_crcs and not batch.validate_crc():
                    raise errors.CorruptRecordException(f"the batch's CRC does not match ({tp})")
                if self._isolation_level == READ_COMMITTED and batch.producer_id is not None:
                    self._consume_aborted_up_to(batch.base_offset)
                    if batch.is_control_batch and self._contains_abort_marker(batch):
                        self._aborted_producers.discard(batch.producer_id)
                    if batch.is_transactional and batch.producer_id in self._aborted_producers:
                        self.next_fetch_offset = batch.next_offset
                        continue
                if batch.is_control_batch:  # skipped at any isolation level, as aiokafka does
                    self.next_fetch_offset = batch.next_offset
                    continue
                for record in batch:
                    if record.offset < self.next_fetch_offset:
                        continue  # a compressed legacy message set starts before the position
                    consumer_record = self._consumer_record(tp, record)
                    self.next_fetch_offset = record.offset + 1
                    yield consumer_record
            except Exception as exc:  # whatever the C or Python parser raises on this batch
                log.warning(
                    "aiokafka cannot read %s[%d]@%d: %r",
                    tp.topic,
                    tp.partition,
                    self.next_fetch_offset,
                    exc,
                    extra=record_fields(tp.topic, tp.partition, self.next_fetch_offset),
                )
                yield _UnreadableBatch(self.next_fetch_offset, _failure(exc))
                return  # the rest of this fetch is fetched again after the recovery
            self.next_fetch_offset = batch.next_offset


class HardenedFetcher(Fetcher):  # type: ignore[misc]
    """aiokafka's Fetcher whose fetched batches are unpacked by `HardenedPartitionRecords`
    and whose `fetched_records` replaces each `_UnreadableBatch` by the batch's records,
    read from its raw bytes."""

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        needs_wakeup: bool = await super()._proc_fetch_request(assignment, node_id, request)
        # Every result fetched so far was hardened when it arrived (no await lies between
        # aiokafka storing a result and this loop), so the unhardened ones are this request's.
        for result in self._records.values():
            if isinstance(result, FetchResult) and not isinstance(
                result._partition_records, HardenedPartitionRecords | None
            ):
                result._partition_records = HardenedPartitionRecords.of(result._partition_records)
        return needs_wakeup

    async def fetched_records(
        self, partitions: Any, timeout: float = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        drained: dict[TopicPartition, list[Any]] = await super().fetched_records(
            partitions, timeout, max_records
        )
        for tp, records in list(drained.items()):
            if records and isinstance(records[-1], _UnreadableBatch):
                drained[tp] = records[:-1] + await self._recovered(tp, records[-1])
                if not drained[tp]:
                    del drained[tp]
        return drained

    async def next_record(self, partitions: Any) -> Any:
        raise NotImplementedError("a hardened consumer is read with getmany, not getone")

    async def _recovered(self, tp: TopicPartition, mark: _UnreadableBatch) -> list[Any]:
        """The records of the batch aiokafka failed on, from `mark.offset`, read from its
        raw bytes; the position moves past the batch. Nothing when the partition moved on
        meanwhile (revoked, or sought elsewhere): its new reader fetches the batch again."""
        data, highwater = await self._fetch_raw(tp, mark.offset)
        records, end = recover(tp.topic, tp.partition, data, mark.offset, highwater, mark.failure)
        if not self._subscriptions.is_assigned(tp):
            return []
        state = self._subscriptions.subscription.assignment.state_value(tp)
        if state.position != mark.offset:
            return []
        self.seek_to(tp, end)
        log.warning(
            "%s[%d]@%d..%d recovered from raw bytes: %d unreadable",
            tp.topic,
            tp.partition,
            mark.offset,
            end - 1,
            sum(1 for r in records if r.unreadable is not None),
            extra=record_fields(tp.topic, tp.partition, mark.offset),
        )
        return [r if r.unreadable is not None else _plain(r) for r in records]

    async def _fetch_raw(self, tp: TopicPartition, offset: int) -> tuple[bytes, int]:
        """The message set from `offset` as the partition leader sends it, and the high
        watermark; a broker error raises (the worker stops and is restarted)."""
        node_id = self._client.cluster.leader_for_partition(tp)
        if node_id is None or node_id < 0:
            raise errors.LeaderNotAvailableError(f"no leader for {tp}")
        request = FetchRequest(
            100,  # max wait (ms): the data is there; the embedded broker answers nothing at 0
            1,
            self._fetch_max_bytes,
            self._isolation_level,
            [(tp.topic, [(tp.partition, offset, self._max_partition_fetch_bytes)])],
        )
        response = await self._client.send(node_id, request)
        for topic, partitions in response.topics:
            for partition, error_code, highwater, *data in partitions:
                if (topic, partition) != (tp.topic, tp.partition):
                    continue
                error = errors.for_code(error_code)
                if error is not errors.NoError:
                    raise error(f"fetching {tp}@{offset} again raw")
                return bytes(data[-1] or b""), highwater
        raise errors.KafkaError(f"the broker did not answer for {tp}@{offset}")


def _plain(record: RecoveredRecord) -> ConsumerRecord[bytes, bytes]:
    """A whole record recovered here, as the ConsumerRecord aiokafka would have returned."""
    return ConsumerRecord(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.timestamp_type,
        record.key,
        record.value,
        record.checksum,
        record.serialized_key_size,
        record.serialized_value_size,
        record.headers,
    )


def harden(consumer: AIOKafkaConsumer) -> None:
    """Make a started consumer's fetcher a HardenedFetcher (before anything was fetched)."""
    fetcher = consumer._fetcher
    assert type(fetcher) is Fetcher, f"harden a started consumer once ({type(fetcher)})"
    assert not fetcher._records and not fetcher._in_flight, "harden before anything is fetched"
    fetcher.__class__ = HardenedFetcher
