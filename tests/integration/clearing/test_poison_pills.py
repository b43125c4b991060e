"""Records that used to fail their whole batch (and so, redelivered, stop clearing for every
partner): each now ends as one outcome, and the valid CDR in the same batch is booked.

Found by fuzzing the clearing path; each batch holds the bad record and a valid CDR, goes
through the real `process_batch` against PostgreSQL and the broker, and must commit.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pipeline import reference
from pipeline.clearing.events import EVENT_BYTES_MAX
from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import Signer, read_from_beginning
from pipeline.topics import Topic, topic_name
from schemas.validation import parse_agreement
from settlement.store.clearing_store import SubmittedRecord
from settlement.store.db import connect
from tests.integration.clearing.helpers import cdr_dict, envelope, register_reference_data, sample
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
    records = [
        SubmittedRecord(r.topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value, r.headers)
        for r in read
    ]

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
