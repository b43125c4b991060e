"""Shared set-up for clearing integration tests: reference data and a mixed batch."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline import reference
from pipeline.clearing.batch import Clearing, process_batch
from pipeline.clearing.events import EventWriter
from pipeline.clearing.refcache import ReferenceCache
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import hub_signer, load_hub_keyring, record_proof_keys
from pipeline.kafka.client import (
    Record,
    Signer,
    produce,
    read_from_beginning,
    records_in_topic,
)
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import parse_agreement, parse_location, parse_tariff
from schemas.wire import encode_json
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.proof import proof_headers, signed_message
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import connect_async


def sample(name: str) -> Any:
    return loads_exact(resources.files("pipeline.samples").joinpath(name).read_bytes())


def register_reference_data(settings: Settings) -> None:
    reference.add_partners(
        settings,
        [
            (PartyRef.parse("NL*TNM"), "CPO", "TNM Charging"),
            (PartyRef.parse("NL*ABC"), "CPO", "ABC Laden (no agreement)"),
            (PartyRef.parse("DE*EMP"), "EMSP", "EMP Mobility"),
            (PartyRef.parse("BE*EVB"), "EMSP", "EVB"),
        ],
    )
    reference.publish_tariffs(settings, [parse_tariff(sample("tariff_nl_tnm_ac.json"))])
    reference.publish_locations(settings, [parse_location(sample("location_nl_tnm_ams.json"))])
    reference.publish_agreements(
        settings, [parse_agreement(sample("agreement_nl_tnm_default.json"))]
    )


def cdr_dict(index: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = sample("cdrs_nl_tnm.json")[index]
    data.update(changes)
    return data


def envelope(cdr: dict[str, Any], submitter: str = "NL*TNM") -> bytes:
    country, party = submitter.split("*")
    return encode_json(
        {
            "event_id": str(uuid.uuid4()),
            "type": "cdr.submitted",
            "version": 1,
            "occurred_at": "2026-03-04T00:00:00Z",
            "submitter": {"country_code": country, "party_id": party},
            "cdr": cdr,
        }
    ).encode()


def credit_of(index: int, suffix: str = "-CR") -> dict[str, Any]:
    original = cdr_dict(index)
    return cdr_dict(
        index,
        id=original["id"] + suffix,
        credit=True,
        credit_reference_id=original["id"],
        total_cost={"excl_vat": -original["total_cost"]["excl_vat"]},
    )


@dataclass(frozen=True, slots=True)
class Expected:
    ledgered: int
    rejected: dict[str, int]
    duplicates: int


def mixed_batch() -> tuple[list[tuple[bytes, bytes]], Expected]:
    """Valid, duplicate, conflicting, malformed, schema-invalid, unknown tariff, no agreement
    and credit CDRs, with the outcome each must get."""
    key = lambda d: f"{d['country_code']}*{d['party_id']}*{d['id']}".encode()  # noqa: E731
    valid = [cdr_dict(i) for i in range(3)]
    conflicting = cdr_dict(1, remark="re-sent with a correction")
    bad_volume = cdr_dict(2, id="CDR-BAD-VOLUME")  # negative TIME: OCPI forbids it
    bad_volume["charging_periods"][0]["dimensions"][1]["volume"] = -1
    fed_back = cdr_dict(2, id="CDR-FED-BACK")  # negative ENERGY: OCPI allows it, we do not
    fed_back["charging_periods"][0]["dimensions"][0]["volume"] = -1
    unknown_tariff = cdr_dict(0, id="CDR-NO-TARIFF")
    del unknown_tariff["tariffs"]
    for period in unknown_tariff["charging_periods"]:
        period["tariff_id"] = "NO-SUCH-TARIFF"
    no_agreement = cdr_dict(0, id="CDR-ABC-1", party_id="ABC")
    no_agreement["cdr_location"] = {**no_agreement["cdr_location"], "evse_id": "NL*ABC*E1*1"}
    records = [(key(d), envelope(d)) for d in valid]
    records += [
        (key(valid[0]), envelope(valid[0])),  # exact duplicate, new envelope
        (key(conflicting), envelope(conflicting)),
        (b"garbage", b'{"event_id": "1", "cdr": {'),
        (key(bad_volume), envelope(bad_volume)),
        (key(fed_back), envelope(fed_back)),
        (key(unknown_tariff), envelope(unknown_tariff)),
        (key(no_agreement), envelope(no_agreement, "NL*ABC")),
        (key(valid[0]), envelope(credit_of(0))),
        (b"NL*TNM*NOPE", envelope(credit_of(0, "-CR2") | {"credit_reference_id": "NOPE"})),
    ]
    expected = Expected(
        ledgered=4,
        duplicates=1,
        rejected={
            "cdr_id_conflict": 1,
            "malformed_json": 1,
            "schema_invalid": 1,
            "implausible": 1,
            "no_tariff": 1,
            "no_agreement": 1,
            "credit_reference_unknown": 1,
        },
    )
    return records, expected


def submit(
    settings: Settings, records: list[tuple[bytes, bytes]], sign: Signer | bool | None = True
) -> list[SubmittedRecord]:
    """Produce to cdr.submitted and read back with the broker's positions. Records carry the
    hub's proof unless `sign` is False (or another signer)."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    signer = hub_signer(settings) if sign is True else (sign or None)
    asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records, signer))
    read = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, topic, len(records)))
    return [submitted(r) for r in read]


def submitted(r: Record) -> SubmittedRecord:
    """A record read back from the broker as the clearing agent hands it on."""
    return SubmittedRecord(
        r.topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value, r.headers, r.unreadable
    )


def topic_records(settings: Settings) -> list[SubmittedRecord]:
    """Every record cdr.submitted holds, oldest first per partition."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    count = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
    read = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, topic, count))
    return [submitted(r) for r in read]


async def clear_in_process(
    settings: Settings, records: list[SubmittedRecord], batch: int
) -> Counter[str]:
    """Clear as the worker does (process_batch as roamclear_worker, `batch` records at a
    time), without its process; the events it would produce are dropped."""
    conn = await connect_async(role_url(settings, DbRole.WORKER))
    await prepare(conn)

    async def send(out: Any) -> None:
        pass

    keys = record_proof_keys(load_hub_keyring(settings))
    writer = EventWriter(settings.topic_prefix, PartyRef.parse(settings.hub_party))
    clearing = Clearing(ReferenceCache(), PlausibilityLimits(), writer, send, keys)
    outcomes: Counter[str] = Counter()
    try:
        for start in range(0, len(records), batch):
            result = await process_batch(conn, records[start : start + batch], clearing)
            outcomes.update(result.outcomes)
    finally:
        await conn.close()
    return outcomes


def partner_signer(key_id: str, private_key: Ed25519PrivateKey) -> Signer:
    """Signs as a partner producing straight to Kafka does (docs/examples/)."""

    def sign(topic: str, value: bytes) -> list[tuple[str, bytes]]:
        signature = private_key.sign(signed_message(topic, key_id, value))
        return proof_headers(key_id, base64.urlsafe_b64encode(signature).decode().rstrip("="))

    return sign


def cdr_model(index: int) -> Cdr:
    return Cdr.model_validate(cdr_dict(index))
