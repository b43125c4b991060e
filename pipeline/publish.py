"""Publishing OCPI objects as roamclear events (CLI, demo, simulator share this path).

A CDR goes to `cdr.submitted` keyed by its canonical partition key (the credited CDR's key
for a credit), wrapped in the DESIGN.md envelope with the CPO as submitter, and signed with
the hub's key (settlement.clearing.proof): the hub vouches for the submitter it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import Signer, produce
from pipeline.topics import Topic, topic_name
from schemas.events import CdrSubmitted, new_envelope
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.wire import to_ocpi_json


def cdr_record(cdr: Cdr, submitter: PartyRef | None = None) -> tuple[bytes, bytes]:
    """(key, value) of the cdr.submitted record for one CDR."""
    envelope = new_envelope(
        CdrSubmitted,
        submitter=submitter or PartyRef(country_code=cdr.country_code, party_id=cdr.party_id),
        payload=cdr,
    )
    return str(CdrKey.partition_key(cdr)).encode(), to_ocpi_json(envelope)


async def publish_cdrs(settings: Settings, cdrs: Sequence[Cdr]) -> int:
    """Submit CDRs in their CPOs' names, with the hub's proof (the operator vouches)."""
    assert settings.kafka_bootstrap_servers is not None
    return await publish_records(
        settings.kafka_bootstrap_servers,
        topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED),
        [cdr_record(c) for c in cdrs],
        hub_signer(settings),
    )


async def publish_records(
    bootstrap_servers: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    sign: Signer | None = None,
) -> int:
    return await produce(bootstrap_servers, topic, records, sign)
