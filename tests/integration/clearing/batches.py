"""Hand-crafted Kafka record batches (magic 2) and a raw ProduceRequest, for records no
client library would write: a header name that is not UTF-8, a corrupt compressed payload,
a CRC that does not match. Apache Kafka refuses some of them at produce time (it checks CRCs
and decompresses); `produce_raw` returns the broker's error code so a test can tell.
"""

from __future__ import annotations

import struct

from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c, encode_varint

CREATE_TIME_MS = 1_772_582_400_000  # 2026-03-04T00:00:00Z
GZIP = 1
# Error codes a broker that validates batches answers with (CORRUPT_MESSAGE, INVALID_RECORD).
REFUSED = frozenset({2, 87})


def _varint(value: int) -> bytes:
    out = bytearray()
    encode_varint(value, out.append)
    return bytes(out)


def _bytes(value: bytes | None) -> bytes:
    return _varint(-1) if value is None else _varint(len(value)) + value


def record(
    offset_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[bytes, bytes | None]] | None = None,
) -> bytes:
    """One record; header names are raw bytes (any bytes at all)."""
    headers = headers or []
    body = b"\x00" + _varint(0) + _varint(offset_delta) + _bytes(key) + _bytes(value)
    body += _varint(len(headers)) + b"".join(_bytes(name) + _bytes(v) for name, v in headers)
    return _varint(len(body)) + body


def batch(
    records: list[bytes],
    *,
    attributes: int = 0,
    payload: bytes | None = None,
    crc: int | None = None,
) -> bytes:
    """A record batch of `records` at base offset 0 (the broker assigns offsets);
    `payload` replaces the records' bytes (a compressed payload), `crc` the true CRC."""
    count = len(records)
    after_crc = struct.pack(
        ">hiqqqhii", attributes, count - 1, CREATE_TIME_MS, CREATE_TIME_MS, -1, -1, -1, count
    )
    after_crc += b"".join(records) if payload is None else payload
    checksum = calc_crc32c(after_crc) if crc is None else crc
    after_length = struct.pack(">ibI", -1, 2, checksum) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


async def produce_raw(servers: str, topic: str, partition: int, data: bytes) -> int:
    """Send one record batch as it is (acks=all); returns the broker's error code."""
    client = AIOKafkaClient(bootstrap_servers=servers)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
        leader = metadata.leader_for_partition(TopicPartition(topic, partition))
        assert leader is not None and leader >= 0
        response = await client.send(
            leader, ProduceRequest(None, -1, 10_000, [(topic, [(partition, data)])])
        )
        [(_, [(_, error_code, *_)])] = response.topics
        return int(error_code)
    finally:
        await client.close()
