"""Our own record-batch reader against aiokafka's (both parsers), and the hardened unpacking
of a fetched message set: no broker, bytes built here."""

from __future__ import annotations

import struct

from aiokafka.record._crecords import MemoryRecords as CMemoryRecords
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.record.memory_records import _MemoryRecordsPy
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.kafka.hardened import HardenedPartitionRecords, _UnreadableBatch
from pipeline.kafka.rawbatch import recover
from tests.integration.clearing.batches import batch, record

TP = TopicPartition("t", 3)
CODECS = (0, 1, 2, 3, 4)  # none, gzip, snappy, lz4, zstd

names = st.text(max_size=8)
headers = st.lists(st.tuples(names, st.none() | st.binary(max_size=8)), max_size=3)
records = st.lists(
    st.tuples(
        st.none() | st.binary(max_size=16),
        st.none() | st.binary(max_size=64),
        headers,
        st.integers(min_value=0, max_value=2**40),
    ),
    min_size=1,
    max_size=8,
)


def _built(codec: int, items: list[tuple[bytes | None, bytes | None, list, int]]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, (key, value, hs, timestamp) in enumerate(items):
        builder.append(offset, timestamp=timestamp, key=key, value=value, headers=hs)
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, 40)  # a base offset as a broker assigns it
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(codec=st.sampled_from(CODECS), items=records, start_at=st.integers(0, 7))
def test_a_whole_batch_reads_as_aiokafka_reads_it(codec: int, items: list, start_at: int) -> None:
    data = _built(codec, items)
    start = 40 + min(start_at, len(items) - 1)
    ours, end = recover("t", 3, data, start, 40 + len(items), "aiokafka failed")
    assert end == 40 + len(items)
    theirs = [r for r in DefaultRecordBatch(data) if r.offset >= start]
    assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in ours] == [
        (r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in theirs
    ]
    # aiokafka failed on the first record: nothing here finds fault with it, so its failure
    # is what makes it unreadable; the others are whole
    assert [r.unreadable for r in ours] == ["aiokafka failed"] + [None] * (len(ours) - 1)


def _unpacked(data: bytes, memory_records: type) -> list:
    partition = HardenedPartitionRecords(TP, memory_records(data), [], 0, None, None, True, 0)
    return list(partition)


def test_both_parsers_stop_at_a_header_name_that_is_not_utf8_with_the_same_mark() -> None:
    data = batch([record(0, b"k", b"v0"), record(1, b"k", b"v1", [(b"\xff", b"x")])])
    for memory_records in (CMemoryRecords, _MemoryRecordsPy):
        first, mark = _unpacked(data, memory_records)
        assert (first.offset, first.value) == (0, b"v0")
        assert isinstance(mark, _UnreadableBatch) and mark.offset == 1
    records, end = recover("t", 3, data, 1, 2, "aiokafka failed")
    assert end == 2
    [bad] = records
    assert bad.value == b"v1" and bad.headers == (("\udcff", b"x"),)
    assert bad.unreadable == "header 0 has a name that is not UTF-8 (ff)"


def test_a_legacy_message_whose_crc_does_not_match_is_one_unreadable_offset() -> None:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=1_700_000_000_000, key=b"k", value=b"legacy")
    data = bytearray(builder.build())
    data[-1] ^= 0xFF  # a flipped bit in the value
    for memory_records in (CMemoryRecords, _MemoryRecordsPy):
        [mark] = _unpacked(bytes(data), memory_records)
        assert isinstance(mark, _UnreadableBatch) and mark.offset == 0
    [row], end = recover("t", 3, bytes(data), 0, 1, "aiokafka could not read it")
    assert end == 1 and row.value == bytes(data)
    assert row.unreadable is not None and "magic 1" in row.unreadable


def test_a_control_batch_is_skipped_and_what_follows_is_read() -> None:
    marker = batch([record(0, b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")], attributes=0x20)
    after = bytearray(batch([record(0, b"k", b"v")]))
    struct.pack_into(">q", after, 0, 1)
    for memory_records in (CMemoryRecords, _MemoryRecordsPy):
        [only] = _unpacked(marker + bytes(after), memory_records)
        assert (only.offset, only.value) == (1, b"v")
    assert recover("t", 3, marker, 0, 1, "x") == ([], 1)


def test_a_corrupt_batch_gives_each_offset_once_and_its_bytes_once() -> None:
    data = batch([record(n, b"k", b"v") for n in range(3)], attributes=1, payload=b"junk")
    rows, end = recover("t", 3, data, 0, 3, "aiokafka could not read it")
    assert end == 3 and [r.offset for r in rows] == [0, 1, 2]
    assert rows[0].value == data and rows[1].value is None and rows[2].value is None
    assert all(r.unreadable and "gzip payload is corrupt" in r.unreadable for r in rows)
    assert "archived as the value of offset 0" in (rows[2].unreadable or "")


def test_a_batch_claiming_more_offsets_than_exist_ends_at_the_high_watermark() -> None:
    data = bytearray(batch([record(0, b"k", b"v")], crc=1))
    struct.pack_into(">i", data, 23, 2**31 - 1)  # LastOffsetDelta, damaged
    rows, end = recover("t", 3, bytes(data), 0, 5, "aiokafka could not read it")
    assert end == 5 and len(rows) == 5
