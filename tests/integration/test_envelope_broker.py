"""A cdr.submitted envelope goes through the real broker and comes back identical."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipeline.kafka.client import read_from_beginning
from pipeline.publish import cdr_record, publish_records
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.events import CdrSubmitted, parse_envelope
from schemas.hub.party import CdrKey
from schemas.ocpi.cdr import Cdr

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "pipeline" / "samples"


def test_envelope_round_trip_through_the_broker(kafka_bootstrap: str, topic_prefix: str) -> None:
    cdrs = [
        Cdr.model_validate(item)
        for item in loads_exact((SAMPLES / "cdrs_nl_tnm.json").read_bytes())
    ]
    records = [cdr_record(cdr) for cdr in cdrs]
    topic = topic_name(topic_prefix, Topic.CDR_SUBMITTED)

    sent = asyncio.run(publish_records(kafka_bootstrap, topic, records))
    received = asyncio.run(read_from_beginning(kafka_bootstrap, topic, count=sent, timeout_s=20))

    assert sent == len(cdrs) == len(received)
    by_key = {record.key: record for record in received}
    for (key, value), cdr in zip(records, cdrs, strict=True):
        record = by_key[key]
        assert record.value == value  # byte for byte
        envelope = parse_envelope(record.value)
        assert isinstance(envelope, CdrSubmitted)
        assert envelope.cdr == cdr
        assert envelope.submitter.party_id == "TNM"
        assert key == str(CdrKey.of(cdr)).encode()
    # one key always lands on one partition, which is what dedupe and credits rely on
    assert len({(r.key, r.partition) for r in received}) == len({r.key for r in received})
