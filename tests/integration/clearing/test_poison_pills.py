"""Records that used to fail their whole batch (and so, redelivered, stop clearing for every
partner): each now ends as one outcome, and the valid CDR in the same batch is booked.

Found by fuzzing the clearing path; each batch holds the bad record and a valid CDR, goes
through the real `process_batch` against PostgreSQL and the broker, and must commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pipeline import reference
from pipeline.clearing.events import EVENT_BYTES_MAX
from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import Signer, new_producer, read_from_beginning, send_records
from pipeline.topics import Topic, topic_name
from schemas.validation import parse_agreement
from settlement.store import books
from settlement.store.db import connect
from tests.integration.clearing import batches as raw
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    register_reference_data,
    sample,
    submitted,
)
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration


def _with_extra(text: str) -> bytes:
    """CDR 1 with a field OCPI does not define (kept unvalidated) holding `text`."""
    base = envelope(cdr_dict(1)).decode()
    anchor = '"id":"CDR-2026-0002"'
    assert anchor in base
    return base.replace(anchor, f'{anchor},"x":{text}', 1).encode()


def _embedded(cdr_id: str, tariff_changes: dict[str, Any], total_cost: dict[str, Any]) -> bytes:
    """CDR 1 priced by its own embedded tariff (an unregistered id), totals replaced."""
    cdr = cdr_dict(1, id=cdr_id)
    tariff = cdr["tariffs"][0]
    tariff.update(id=f"{cdr_id}-T", **tariff_changes)
    for period in cdr["charging_periods"]:
        period["tariff_id"] = tariff["id"]
    for name in ("total_fixed_cost", "total_energy_cost", "total_parking_cost", "total_time_cost"):
        cdr.pop(name, None)
    cdr["total_cost"] = total_cost
    return envelope(cdr)


def _free_tariff() -> dict[str, Any]:
    elements = cdr_dict(1)["tariffs"][0]["elements"]
    for element in elements:
        for component in element["price_components"]:
            component["price"] = 0
    return {"elements": elements}


PILLS: dict[str, dict[str, Any]] = {
    "json nested 1000 deep": {
        "value": b'{"cdr":' + b"[" * 1000 + b"]" * 1000 + b"}",
        "outcome": "malformed_json",
    },
    "an integer of 4301 digits": {"value": _with_extra("9" * 4301), "outcome": "malformed_json"},
    "an extra integer of 2**64": {"value": _with_extra(str(2**64)), "outcome": "schema_invalid"},
    "an extra lone surrogate": {"value": _with_extra('"\\ud800"'), "outcome": "schema_invalid"},
    "an extra nested 254 deep": {
        "value": _with_extra("[" * 254 + "]" * 254),
        "outcome": "schema_invalid",
    },
    "a step_size of 2**64": {
        "value": envelope(cdr_dict(1))
        .decode()
        .replace('"step_size":1', f'"step_size":{2**64}', 1)
        .encode(),
        "outcome": "schema_invalid",
    },
    "a negative max_price": {
        "value": _embedded(
            "CDR-NEG-MAX",
            {"max_price": {"excl_vat": -0.001, "incl_vat": -0.001}},
            {"excl_vat": 0, "incl_vat": 0},
        ),
        "outcome": "implausible",
        "agreement": {"settles": "HUB_COMPUTED"},
    },
    "a negative declared total": {
        "value": _embedded("CDR-FREE", _free_tariff(), {"excl_vat": 0, "incl_vat": -0.005}),
        "outcome": "implausible",
        "agreement": {"settles": "CPO_DECLARED"},
    },
    "a header without a value": {
        "value": envelope(cdr_dict(1)),
        "headers": [("trace", None)],
        "outcome": "booked",
    },
    "a create time in year 10000": {
        "value": envelope(cdr_dict(1)),
        "timestamp_ms": 253_402_300_800_000,
        "outcome": "booked",
    },
    "600 kB of invalid UTF-8": {"value": b"\xff" * 600_000, "outcome": "malformed_json"},
}


async def _produce(servers: str, topic: str, items: list[dict[str, Any]], sign: Signer) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, max_request_size=2_000_000)
    await producer.start()
    try:
        for item in items:
            await producer.send_and_wait(
                topic,
                item["value"],
                key=b"k",
                headers=(item.get("headers") or []) + sign(topic, item["value"]),
                timestamp_ms=item.get("timestamp_ms"),
            )
    finally:
        await producer.stop()


@pytest.mark.parametrize("name", list(PILLS))
def test_a_poison_pill_ends_as_one_outcome_and_the_batch_commits(
    name: str, fresh_settings: Settings
) -> None:
    settings = fresh_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    register_reference_data(settings)
    pill = PILLS[name]
    if "agreement" in pill:
        data = sample("agreement_nl_tnm_default.json")
        data.update(
            agreement_id="TNM-EVB-EMBEDDED",
            emsp={"country_code": "BE", "party_id": "EVB"},
            allow_embedded_tariff=True,
            **pill["agreement"],
        )
        reference.publish_agreements(settings, [parse_agreement(data)])
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    asyncio.run(
        _produce(
            settings.kafka_bootstrap_servers,
            topic,
            [pill, {"value": envelope(cdr_dict(0))}],
            hub_signer(settings),
        )
    )
    read = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, topic, 2))
    records = [submitted(r) for r in read]

    result = asyncio.run(_clear(settings, records))

    bad = "booked" if pill["outcome"] == "booked" else "rejected"
    assert sum(result.outcomes.values()) == 2 and result.outcomes["booked"] >= 1
    assert result.outcomes[bad] >= 1
    with connect(settings.database_url) as conn:
        reasons = [r["reason_code"] for r in conn.execute("SELECT reason_code FROM rejection")]
    assert reasons == ([] if bad == "booked" else [pill["outcome"]])
    rejected_topic = topic_name(settings.topic_prefix, Topic.REJECTED)
    for event in asyncio.run(
        read_from_beginning(settings.kafka_bootstrap_servers, rejected_topic, len(reasons))
    ):
        assert event.value is not None and len(event.value) <= EVENT_BYTES_MAX
        if name == "600 kB of invalid UTF-8":
            assert json.loads(event.value)["rejection"]["original_payload_truncated"] is True


# Records aiokafka cannot read: each used to raise inside `getmany` (before any roamclear
# code ran), so the worker failed on it at every restart and clearing stopped for every
# partner. Each is now read from its raw bytes (pipeline.kafka.hardened) and every one of its
# offsets is rejected as unreadable_record, once. "value" says what the first rejected
# offset archives: the record's own value, or the raw bytes of its whole batch.
RawRecord = Callable[..., bytes]


def _signed_records(sign: Signer, topic: str) -> RawRecord:
    """Builds raw records of CDR `index`, with the hub's proof and any extra headers."""

    def record(offset_delta: int, index: int, headers: Any = None) -> bytes:
        value = envelope(cdr_dict(index))
        proof = [(name.encode(), header) for name, header in sign(topic, value)]
        return raw.record(offset_delta, b"NL*TNM*K", value, [*(headers or []), *proof])

    return record


def _three(rec: RawRecord) -> list[bytes]:
    return [rec(n, n) for n in range(3)]


UNREADABLE: dict[str, dict[str, Any]] = {
    "a header name that is not UTF-8": {
        "batch": lambda rec: raw.batch([rec(0, 1, [(b"\xff\xfe", b"x"), (b"trace", b"1")])]),
        "offsets": 1,
        "booked": 0,
        "value": "record",
        "headers": [[{"hex": "fffe"}, "78"], ["trace", "31"]],
    },
    "a header name that is not UTF-8 between two valid CDRs": {
        "batch": lambda rec: raw.batch([rec(0, 1), rec(1, 2, [(b"caf\xe9", None)]), rec(2, 0)]),
        "offsets": 3,
        "booked": 2,  # CDR 0 comes again in the batch after it: a duplicate
        "value": "record",
        "headers": [[{"hex": "636166e9"}, None]],
    },
    "a gzip batch of three records whose payload is corrupt": {
        "batch": lambda rec: raw.batch(
            _three(rec), attributes=raw.GZIP, payload=b"\x1f\x8b\x08\x00 not gzip"
        ),
        "offsets": 3,
        "booked": 0,
        "value": "batch",
    },
    "a batch whose CRC does not match": {
        "batch": lambda rec: raw.batch(_three(rec)[:2], crc=0x12345678),
        "offsets": 2,
        "booked": 0,
        "value": "batch",
    },
    "a record whose fields overrun its length": {
        # a length of 3 where the record is about 2 kB
        "batch": lambda rec: raw.batch([b"\x06" + rec(0, 1)[2:]]),
        "offsets": 1,
        "booked": 0,
        "value": "batch",
    },
}


@pytest.mark.parametrize("name", list(UNREADABLE))
def test_a_record_the_client_cannot_read_is_rejected_once_per_offset(
    name: str, fresh_settings: Settings
) -> None:
    settings = fresh_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    register_reference_data(settings)
    pill = UNREADABLE[name]
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    servers = settings.kafka_bootstrap_servers
    rec = _signed_records(hub_signer(settings), topic)
    batch = pill["batch"](rec)
    error_code = asyncio.run(raw.produce_raw(servers, topic, 0, batch))
    # Apache Kafka checks CRCs and record structure and decompresses when it appends: what
    # it refuses never reaches a consumer there. The embedded broker stores it as it came.
    assert error_code == 0 or error_code in raw.REFUSED
    offsets = pill["offsets"] if error_code == 0 else 0
    valid = raw.batch([rec(0, 0)])
    assert asyncio.run(raw.produce_raw(servers, topic, 0, valid)) == 0
    read = asyncio.run(read_from_beginning(servers, topic, offsets + 1))
    assert [r.offset for r in read] == list(range(offsets + 1))
    unreadable = [r for r in read if r.unreadable is not None]
    assert len(unreadable) == offsets - pill["booked"]

    result = asyncio.run(_clear(settings, [submitted(r) for r in read]))

    assert result.received == offsets + 1
    booked = result.outcomes["booked"] + result.outcomes["duplicate"]
    assert booked == (pill["booked"] if offsets else 0) + 1
    assert result.outcomes["rejected"] == len(unreadable)
    with connect(settings.database_url) as conn:
        assert books.counts(conn, topic, offsets + 1)["pending"] == 0
        rejections = conn.execute(
            'SELECT e."offset", e.value, e.headers, j.reason_code, j.message '
            'FROM rejection j JOIN raw_event e USING (archive_id) ORDER BY e."offset"'
        ).fetchall()
    assert [r["reason_code"] for r in rejections] == ["unreadable_record"] * len(unreadable)
    if not unreadable:
        return
    first = rejections[0]
    assert f"{topic}[0]@{first['offset']}" in first["message"]
    if pill["value"] == "batch":
        assert bytes(first["value"]) == batch
        assert all(r["value"] is None for r in rejections[1:])
        assert all(f"offset {first['offset']}" in r["message"] for r in rejections[1:])
    else:
        assert json.loads(bytes(first["value"]))["type"] == "cdr.submitted"
        # the proof headers follow
        assert first["headers"][: len(pill["headers"])] == pill["headers"]


@pytest.mark.parametrize("codec", ["lz4", "zstd", "snappy"])
def test_a_batch_in_any_codec_kafka_knows_is_cleared(codec: str, fresh_settings: Settings) -> None:
    """Without the codec libraries (aiokafka's extras, cramjam) such a batch could not be
    read at all: the worker failed on it at every restart."""
    settings = fresh_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    register_reference_data(settings)
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)

    async def produce() -> None:
        producer = new_producer(settings.kafka_bootstrap_servers or "", compression_type=codec)
        await producer.start()
        try:
            await asyncio.gather(
                *await send_records(
                    producer,
                    [(topic, b"NL*TNM*K", envelope(cdr_dict(i))) for i in range(3)],
                    hub_signer(settings),
                )
            )
        finally:
            await producer.stop()

    asyncio.run(produce())
    read = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, topic, 3))
    assert [r.unreadable for r in read] == [None] * 3

    result = asyncio.run(_clear(settings, [submitted(r) for r in read]))

    assert result.outcomes["booked"] == 3
