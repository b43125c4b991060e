"""Record batches read by our own code, for the records aiokafka cannot read.

aiokafka parses every record batch before roamclear sees a record, and raises on input that
is legal on the wire (a header name that is not UTF-8) or damaged (a corrupt compressed
payload, a CRC mismatch); see docs/clearing.md, "Records the client library cannot read".
When it does, `pipeline.kafka.hardened` fetches that batch again as raw bytes and reads it
here. Reading never raises. A record that is whole comes back as aiokafka returns it; one
that is not comes back with `unreadable` saying why, with whatever of it can be read, and
every offset of a batch that cannot be read at all comes back once, so every offset gets
exactly one outcome (invariant 2). The raw bytes of such a batch go once, as the value of
its first offset; its other offsets name that offset.

Example: a batch at offsets 7..9 whose record 8 has a header named b"\\xff" gives offsets 7
and 9 as aiokafka would, and offset 8 with its key, value and headers (the name kept as the
surrogate escape "\\udcff") and unreadable="header 0 has a name that is not UTF-8 (ff)".
A gzip batch at offsets 7..9 whose payload is corrupt gives offset 7 with the whole batch as
its value and offsets 8 and 9 with no value, all three unreadable.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import codec
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord

# Batch framing shared by every magic: BaseOffset Int64, Length Int32 (LOG_OVERHEAD bytes),
# then PartitionLeaderEpoch Int32 (v2) or Crc Int32 (v0/v1), then Magic Int8.
_FRAME: Final = struct.Struct(">qi")
_MAGIC_AT: Final = 16
# The v2 header: BaseOffset, Length, PartitionLeaderEpoch, Magic, CRC, Attributes,
# LastOffsetDelta, FirstTimestamp, MaxTimestamp, ProducerId, ProducerEpoch, BaseSequence,
# record count.
_HEADER_V2: Final = struct.Struct(">qiibIhiqqqhii")
_CRC_FROM: Final = 21  # the CRC covers everything from Attributes on
_CODEC_MASK: Final = 0x07
_LOG_APPEND_TIME: Final = 0x08
_CONTROL: Final = 0x20
_DECOMPRESS: Final[dict[int, tuple[str, Callable[[bytes], bytes]]]] = {
    1: ("gzip", codec.gzip_decode),
    2: ("snappy", codec.snappy_decode),
    3: ("lz4", codec.lz4_decode),
    4: ("zstd", codec.zstd_decode),
}
# A batch's offsets beyond this many are not believed: a header that claims more was damaged
# (a full 1 MiB batch of the smallest records holds about 150,000).
BATCH_OFFSETS_MAX: Final = 1 << 20


@dataclass
class RecoveredRecord(ConsumerRecord):  # type: ignore[misc]
    """A record read here rather than by aiokafka; `unreadable` says why aiokafka could not
    read it (None: it is whole). Not frozen, because aiokafka's ConsumerRecord is not."""

    unreadable: str | None = None


class _Malformed(ValueError):
    """The bytes of one record do not follow the record format."""


@dataclass(frozen=True, slots=True)
class _Batch:
    base_offset: int
    raw: bytes
    magic: int

    @property
    def last_offset(self) -> int:
        """v2 stores it; a v0/v1 entry's offset is that of its last (inner) message."""
        if self.magic >= 2 and len(self.raw) >= _HEADER_V2.size:
            return self.base_offset + int(_HEADER_V2.unpack_from(self.raw)[6])
        return self.base_offset


def _batches(data: bytes) -> Iterator[_Batch]:
    """The whole batches in a fetched message set (a fetch may end in a partial one)."""
    pos = 0
    while pos + _FRAME.size <= len(data):
        base_offset, length = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if length < 0 or end > len(data):
            return
        magic = data[pos + _MAGIC_AT] if length > _MAGIC_AT - _FRAME.size else -1
        yield _Batch(base_offset, bytes(data[pos:end]), magic)
        pos = end


def recover(
    topic: str, partition: int, data: bytes, start: int, highwater: int, failure: str
) -> tuple[list[RecoveredRecord], int]:
    """The records from offset `start` to the end of the batch in `data` that holds it, and
    the offset after that batch. `failure` is aiokafka's error, given to the record at
    `start` when nothing here finds fault with it (aiokafka read it differently)."""
    batches = list(_batches(data))
    found = next((i for i, b in enumerate(batches) if b.last_offset >= start), None)
    if found is None:
        reason = f"{failure}; the batch was not found again when fetched raw"
        return [_unreadable(topic, partition, start, reason, None)], start + 1
    batch = batches[found]
    bound = highwater if found + 1 == len(batches) else batches[found + 1].base_offset
    end = max(start + 1, min(batch.last_offset + 1, bound, start + BATCH_OFFSETS_MAX))
    first = max(start, batch.base_offset)
    whole = _Whole(topic, partition, batch, first, end)
    if batch.magic < 2 or len(batch.raw) < _HEADER_V2.size:
        return whole.unreadable(f"{failure} (a message set of magic {batch.magic})"), end
    header = _HEADER_V2.unpack_from(batch.raw)
    stored, computed = header[4], calc_crc32c(batch.raw[_CRC_FROM:])
    if stored != computed:
        return whole.unreadable(
            f"the batch's CRC-32C ({stored:08x}) does not match its bytes ({computed:08x})"
        ), end
    attributes = header[5]
    if attributes & _CONTROL:
        return [], end  # transaction markers, not records: aiokafka skips them too
    payload = batch.raw[_HEADER_V2.size :]
    compression = attributes & _CODEC_MASK
    if compression:
        if compression not in _DECOMPRESS:
            return whole.unreadable(f"the batch's compression codec {compression} is unknown"), end
        name, decompress = _DECOMPRESS[compression]
        try:
            payload = decompress(payload)
        except Exception as exc:  # any codec's failure on damaged bytes
            failed = f"{type(exc).__name__}: {exc}"
            return whole.unreadable(f"the batch's {name} payload is corrupt ({failed})"), end
    records = _read_records(topic, partition, header, payload, first, whole)
    if records and records[0].offset == first and records[0].unreadable is None:
        records[0].unreadable = failure  # aiokafka failed on it for a reason not seen here
    return [r for r in records if r.offset < end], end


@dataclass(frozen=True, slots=True)
class _Whole:
    """One unreadable record per offset of a batch from `first` on: the first holds the
    batch's raw bytes, the others name it."""

    topic: str
    partition: int
    batch: _Batch
    first: int
    end: int

    def unreadable(self, reason: str, first: int | None = None) -> list[RecoveredRecord]:
        start = self.first if first is None else first
        span = f"offsets {self.batch.base_offset}..{self.batch.last_offset}"
        records = [
            _unreadable(
                self.topic,
                self.partition,
                start,
                f"{reason}; the batch ({span}, {len(self.batch.raw)} bytes) is this record's value",
                self.batch.raw,
            )
        ]
        records += [
            _unreadable(
                self.topic,
                self.partition,
                offset,
                f"{reason}; the batch ({span}) is archived as the value of offset {start}",
                None,
            )
            for offset in range(start + 1, self.end)
        ]
        return records


def _read_records(
    topic: str,
    partition: int,
    header: tuple[int, ...],
    payload: bytes,
    first: int,
    whole: _Whole,
) -> list[RecoveredRecord]:
    base_offset, attributes, first_timestamp, max_timestamp, count = (
        header[0],
        header[5],
        header[7],
        header[8],
        header[12],
    )
    records: list[RecoveredRecord] = []
    pos = 0
    for index in range(max(count, 0)):
        try:
            fields, pos = _read_record(payload, pos)
        except _Malformed as exc:
            after = records[-1].offset + 1 if records else first
            return records + whole.unreadable(f"record {index} of the batch: {exc}", after)
        ts_delta, offset_delta, key, value, headers = fields
        offset = base_offset + offset_delta
        if offset < first:
            continue
        log_append_time = bool(attributes & _LOG_APPEND_TIME)
        timestamp = max_timestamp if log_append_time else first_timestamp + ts_delta
        # as aiokafka's C reader: -1 means the record has no timestamp
        stamp: Any = None if timestamp == -1 else timestamp
        stamp_type: Any = None if timestamp == -1 else int(log_append_time)
        names: list[str] = []
        unreadable = None
        for number, (name, _) in enumerate(headers):
            try:
                names.append(name.decode("utf-8"))
            except UnicodeDecodeError:
                names.append(name.decode("utf-8", "surrogateescape"))
                unreadable = unreadable or (
                    f"header {number} has a name that is not UTF-8 ({name.hex(' ')})"
                )
        records.append(
            RecoveredRecord(
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp=stamp,
                timestamp_type=stamp_type,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=-1 if key is None else len(key),
                serialized_value_size=-1 if value is None else len(value),
                headers=tuple((n, v) for n, (_, v) in zip(names, headers, strict=True)),
                unreadable=unreadable,
            )
        )
    return records


def _read_record(
    data: bytes, pos: int
) -> tuple[tuple[int, int, bytes | None, bytes | None, list[tuple[bytes, bytes | None]]], int]:
    length, pos = _varint(data, pos)
    end = pos + length
    if length < 0 or end > len(data):
        raise _Malformed(f"a length of {length} bytes at byte {pos} overruns the batch")
    _, pos = _varint(data, pos, end)  # attributes: unused
    ts_delta, pos = _varint(data, pos, end)
    offset_delta, pos = _varint(data, pos, end)
    key, pos = _bytes(data, pos, end)
    value, pos = _bytes(data, pos, end)
    count, pos = _varint(data, pos, end)
    if count < 0:
        raise _Malformed(f"{count} headers")
    headers: list[tuple[bytes, bytes | None]] = []
    for _ in range(count):
        name, pos = _bytes(data, pos, end)
        if name is None:
            raise _Malformed("a header without a name")
        header_value, pos = _bytes(data, pos, end)
        headers.append((name, header_value))
    if pos != end:
        raise _Malformed(f"its fields take {pos - end + length} bytes, its length says {length}")
    return (ts_delta, offset_delta, key, value, headers), end


def _bytes(data: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = _varint(data, pos, end)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise _Malformed(f"a field of {length} bytes at byte {pos} overruns its record")
    return bytes(data[pos : pos + length]), pos + length


def _varint(data: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """A zig-zag varint (at most 10 bytes, as Kafka's varlong)."""
    limit = len(data) if end is None else end
    result = shift = 0
    for _ in range(10):
        if pos >= limit:
            raise _Malformed(f"a varint runs past byte {limit}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise _Malformed(f"a varint longer than 10 bytes before byte {pos}")


def _unreadable(
    topic: str, partition: int, offset: int, reason: str, value: bytes | None
) -> RecoveredRecord:
    return RecoveredRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=None,
        timestamp_type=None,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1 if value is None else len(value),
        headers=(),
        unreadable=reason,
    )
