"""Publishing reference data: PostgreSQL first (the full history), then the compacted topic.

PostgreSQL is written first because it is what the clearing agent reads; the topics carry
the latest version per key for any other reader. Publishing a version twice is a no-op in
PostgreSQL and one more identical record on the topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pipeline.config import Settings
from pipeline.kafka.client import produce
from pipeline.topics import Topic, topic_name
from schemas.events import AgreementPublished, LocationPublished, TariffPublished, new_envelope
from schemas.hub.agreement import Agreement
from schemas.hub.party import PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import to_ocpi_json
from settlement.store import reference_store
from settlement.store.db import connect


def _hub(settings: Settings) -> PartyRef:
    return PartyRef.parse(settings.hub_party)


def _party(country_code: str, party_id: str) -> PartyRef:
    return PartyRef(country_code=country_code, party_id=party_id)


def publish_tariffs(settings: Settings, tariffs: Sequence[Tariff]) -> int:
    assert settings.database_url and settings.kafka_bootstrap_servers
    with connect(settings.database_url) as conn:
        added = reference_store.add_tariffs(conn, tariffs)
    records = [
        (
            f"{_party(t.country_code, t.party_id)}*{t.id.upper()}".encode(),
            to_ocpi_json(
                new_envelope(
                    TariffPublished, submitter=_party(t.country_code, t.party_id), payload=t
                )
            ),
        )
        for t in tariffs
    ]
    topic = topic_name(settings.topic_prefix, Topic.TARIFF_PUBLISHED)
    asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records))
    return added


def publish_locations(settings: Settings, locations: Sequence[Location]) -> int:
    assert settings.database_url and settings.kafka_bootstrap_servers
    with connect(settings.database_url) as conn:
        added = reference_store.add_locations(conn, locations)
    records = [
        (
            f"{_party(loc.country_code, loc.party_id)}*{loc.id.upper()}".encode(),
            to_ocpi_json(
                new_envelope(
                    LocationPublished,
                    submitter=_party(loc.country_code, loc.party_id),
                    payload=loc,
                )
            ),
        )
        for loc in locations
    ]
    topic = topic_name(settings.topic_prefix, Topic.LOCATION_PUBLISHED)
    asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records))
    return added


def publish_agreements(settings: Settings, agreements: Sequence[Agreement]) -> int:
    assert settings.database_url and settings.kafka_bootstrap_servers
    with connect(settings.database_url) as conn:
        added = reference_store.add_agreements(conn, agreements)
    records = [
        (
            f"{a.agreement_id}".encode(),
            to_ocpi_json(new_envelope(AgreementPublished, submitter=_hub(settings), payload=a)),
        )
        for a in agreements
    ]
    topic = topic_name(settings.topic_prefix, Topic.AGREEMENT_PUBLISHED)
    asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records))
    return added


def add_partners(settings: Settings, partners: Sequence[tuple[PartyRef, str, str]]) -> None:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        for party, role, name in partners:
            reference_store.add_partner(conn, party, role, name)
