"""Publishing OCPI objects as roamclear events (CLI, demo, simulator share this path).

A CDR goes to `cdr.submitted` keyed by its canonical partition key (the credited CDR's key
for a credit), wrapped in the DESIGN.md envelope with the CPO as submitter, and signed with
the hub's key (settlement.clearing.proof): the hub vouches for the submitter it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import Signer, produce
from pipeline.topics import Topic, topic_name
from schemas.events import ENVELOPE_VERSION, CdrSubmitted, new_envelope, random_event_id
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.types import format_datetime
from schemas.wire import encode_json_bytes, to_ocpi_json

UTF8_BOM: Final = b"\xef\xbb\xbf"  # JSON text may open with one; inside an envelope it may not


def cdr_envelope(cdr: Cdr, submitter: PartyRef | None = None) -> CdrSubmitted:
    """The cdr.submitted envelope of one CDR (a new event id and time); the submitter is the
    CDR's CPO unless named (over OCPI HTTP: the token's partner)."""
    return new_envelope(
        CdrSubmitted,
        submitter=submitter or PartyRef(country_code=cdr.country_code, party_id=cdr.party_id),
        payload=cdr,
    )


def cdr_record(cdr: Cdr, submitter: PartyRef | None = None) -> tuple[bytes, bytes]:
    """(key, value) of the cdr.submitted record for one CDR."""
    return envelope_record(cdr_envelope(cdr, submitter))


def received_cdr_record(cdr: Cdr, body: bytes, submitter: PartyRef) -> tuple[bytes, bytes, str]:
    """(key, value, event id) of the cdr.submitted record of a CDR received as `body` (the
    JSON bytes `cdr` was parsed from, as the OCPI receiver got them): the envelope
    `cdr_record` builds, with the CDR's own bytes in place of their re-serialisation, so the
    partner's exact numbers and fields reach the topic (and a CDR costs no second
    serialisation). A unit test holds both to the same envelope."""
    event_id = random_event_id()
    header = encode_json_bytes(
        {
            "event_id": event_id,
            "type": CdrSubmitted.event_type.value,
            "version": ENVELOPE_VERSION,
            "occurred_at": format_datetime(datetime.now(UTC)),
            "submitter": {"country_code": submitter.country_code, "party_id": submitter.party_id},
        }
    )
    value = header[:-1] + b',"cdr":' + body.removeprefix(UTF8_BOM) + b"}"
    return str(CdrKey.partition_key(cdr)).encode(), value, event_id


def envelope_record(envelope: CdrSubmitted) -> tuple[bytes, bytes]:
    """(key, value) of a cdr.submitted envelope: keyed by the CDR's partition key."""
    return str(CdrKey.partition_key(envelope.cdr)).encode(), to_ocpi_json(envelope)


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
