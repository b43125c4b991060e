"""`rejected retry`: the archived record, whole, in a new envelope with the hub's proof; never
a record whose submitter was not proven."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from pipeline import reference
from pipeline import retry as retries
from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import new_producer
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.validation import parse_agreement, parse_location, parse_tariff
from settlement.store import books
from settlement.store.db import connect
from tests.integration.clearing.helpers import cdr_dict, envelope, sample, topic_records
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration

LARGE_BYTES = 1_600_000


def _register_without_tariff(settings: Settings) -> None:
    reference.add_partners(
        settings,
        [
            (PartyRef.parse("NL*TNM"), "CPO", "TNM Charging"),
            (PartyRef.parse("DE*EMP"), "EMSP", "EMP Mobility"),
            (PartyRef.parse("BE*EVB"), "EMSP", "EVB"),
        ],
    )
    reference.publish_locations(settings, [parse_location(sample("location_nl_tnm_ams.json"))])
    reference.publish_agreements(
        settings, [parse_agreement(sample("agreement_nl_tnm_default.json"))]
    )


def _without_embedded_tariff(index: int, **changes: object) -> dict[str, object]:
    data = cdr_dict(index, **changes)
    del data["tariffs"]
    return data


async def _produce(settings: Settings, values: list[bytes], signed: bool) -> None:
    assert settings.kafka_bootstrap_servers
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    sign = hub_signer(settings)
    producer = new_producer(settings.kafka_bootstrap_servers, max_request_size=4_000_000)
    await producer.start()
    try:
        for value in values:
            headers = sign(topic, value) if signed else []
            await producer.send_and_wait(topic, value, key=b"k", headers=headers)
    finally:
        await producer.stop()


def test_a_large_record_is_retried_whole_once_its_tariff_is_published(
    fresh_settings: Settings,
) -> None:
    settings = fresh_settings
    assert settings.database_url
    _register_without_tariff(settings)
    large = envelope(_without_embedded_tariff(0, x_note="n" * LARGE_BYTES))
    small = envelope(_without_embedded_tariff(1))
    asyncio.run(_produce(settings, [large, small], signed=True))
    assert len(large) > LARGE_BYTES
    first = topic_records(settings)
    assert asyncio.run(_clear(settings, first)).outcomes == Counter({"rejected": 2})

    reference.publish_tariffs(settings, [parse_tariff(sample("tariff_nl_tnm_ac.json"))])
    with connect(settings.database_url) as conn:
        ids = [r["rejection_id"] for r in books.rejections(conn, reason="no_tariff")]
        stored = conn.execute("SELECT max(length(payload)) AS n FROM rejection").fetchone()
        planned = retries.plan(conn, ids, force=False)
    assert stored is not None and stored["n"] < len(large)  # the rejection's copy is cut
    assert planned.refused == {} and len(planned.retries) == 2
    asyncio.run(retries.submit(settings, planned.retries))

    resubmitted = topic_records(settings)[len(first) :]
    assert asyncio.run(_clear(settings, resubmitted)).outcomes == Counter({"booked": 2})
    retried = loads_exact(resubmitted[0].value or b"")
    original = loads_exact(large)
    assert retried["cdr"] == original["cdr"] and retried["event_id"] != original["event_id"]
    assert retried["submitter"] == original["submitter"]


def test_a_record_without_proof_is_never_retried(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url
    _register_without_tariff(settings)
    asyncio.run(_produce(settings, [envelope(_without_embedded_tariff(1))], signed=False))
    assert asyncio.run(_clear(settings, topic_records(settings))).outcomes == Counter(
        {"rejected": 1}
    )
    with connect(settings.database_url) as conn:
        (rejection,) = books.rejections(conn)
        planned = retries.plan(conn, [rejection["rejection_id"], 999_999], force=True)
    assert rejection["reason_code"] == "unauthenticated_submitter"
    assert planned.retries == []
    assert "cannot vouch for it" in planned.refused[rejection["rejection_id"]]
    assert planned.refused[999_999] == "no such rejection"
