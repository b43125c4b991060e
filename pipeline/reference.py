"""Publishing reference data: PostgreSQL first (the full history), then the compacted topic.

PostgreSQL is written first because it is what the clearing agent reads; the topics carry
the latest version per key for any other reader. Publishing a version twice is a no-op in
PostgreSQL and one more identical record on the topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import psycopg

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.kafka.client import produce
from pipeline.topics import Topic, topic_name
from schemas.base import HubModel
from schemas.events import AgreementPublished, LocationPublished, TariffPublished, new_envelope
from schemas.hub.agreement import Agreement
from schemas.hub.party import PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import to_ocpi_json
from settlement.store import reference_store
from settlement.store.db import Row, connect


def _party(country_code: str, party_id: str) -> PartyRef:
    return PartyRef(country_code=country_code, party_id=party_id)


def _publish(
    settings: Settings,
    topic: Topic,
    store: Callable[[psycopg.Connection[Row]], int],
    records: Sequence[tuple[bytes, HubModel]],
) -> int:
    """PostgreSQL first (what the agent reads), then the topic; returns new versions."""
    assert settings.database_url and settings.kafka_bootstrap_servers
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        added = store(conn)
    encoded = [(key, to_ocpi_json(envelope)) for key, envelope in records]
    name = topic_name(settings.topic_prefix, topic)
    asyncio.run(produce(settings.kafka_bootstrap_servers, name, encoded))
    return added


def publish_tariffs(settings: Settings, tariffs: Sequence[Tariff]) -> int:
    records = []
    for tariff in tariffs:
        cpo = _party(tariff.country_code, tariff.party_id)
        envelope = new_envelope(TariffPublished, submitter=cpo, payload=tariff)
        records.append((f"{cpo}*{tariff.id.upper()}".encode(), envelope))
    return _publish(
        settings,
        Topic.TARIFF_PUBLISHED,
        lambda conn: reference_store.add_tariffs(conn, tariffs),
        records,
    )


def publish_locations(settings: Settings, locations: Sequence[Location]) -> int:
    records = []
    for location in locations:
        cpo = _party(location.country_code, location.party_id)
        envelope = new_envelope(LocationPublished, submitter=cpo, payload=location)
        records.append((f"{cpo}*{location.id.upper()}".encode(), envelope))
    return _publish(
        settings,
        Topic.LOCATION_PUBLISHED,
        lambda conn: reference_store.add_locations(conn, locations),
        records,
    )


def publish_agreements(settings: Settings, agreements: Sequence[Agreement]) -> int:
    hub = PartyRef.parse(settings.hub_party)
    records = [
        (a.agreement_id.encode(), new_envelope(AgreementPublished, submitter=hub, payload=a))
        for a in agreements
    ]
    return _publish(
        settings,
        Topic.AGREEMENT_PUBLISHED,
        lambda conn: reference_store.add_agreements(conn, agreements),
        records,
    )


def add_partners(settings: Settings, partners: Sequence[tuple[PartyRef, str, str]]) -> None:
    assert settings.database_url
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        for party, role, name in partners:
            reference_store.add_partner(conn, party, role, name)
