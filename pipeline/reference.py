"""Publishing reference data: PostgreSQL first (the full history), then the compacted topic.

PostgreSQL is written first because it is what the clearing agent reads; the topics carry
the latest version per key for any other reader. Publishing a version twice is a no-op in
PostgreSQL and one more identical record on the topic.

One path for every source: `roamclear tariffs|locations publish` (`publish_tariffs`,
`publish_locations`) and the OCPI receivers (pipeline/ocpi/tariffs.py, locations.py) store
with the same functions in the caller's transaction (`store_tariffs`, `delete_tariff`,
`store_locations`), which return the records to send once it committed (`Outgoing`); the CLI
sends them with a producer of its own, the API with the app's.

    with conn.transaction():
        stored, outgoing = store_tariffs(conn, [tariff], received_at)
    await send(outgoing)        # or send_now(settings, outgoing)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.kafka.client import produce
from pipeline.topics import Topic, topic_name
from schemas.base import HubModel
from schemas.events import (
    AgreementPublished,
    LocationPublished,
    TariffDeleted,
    TariffPublished,
    new_envelope,
)
from schemas.hub.agreement import Agreement
from schemas.hub.party import PartnerRole, PartyRef
from schemas.hub.tariff_deletion import TariffDeletionNotice
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import to_ocpi_json
from settlement.store import reference_store
from settlement.store.db import Row, connect


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Records for one topic, to send after the transaction that stored them committed."""

    topic: Topic
    records: tuple[tuple[bytes, bytes], ...]  # (key, envelope)


def _party(country_code: str, party_id: str) -> PartyRef:
    return PartyRef(country_code=country_code, party_id=party_id)


def _records(pairs: Sequence[tuple[str, HubModel]]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((key.encode(), to_ocpi_json(envelope)) for key, envelope in pairs)


def store_tariffs(
    conn: psycopg.Connection[Row], tariffs: Sequence[Tariff], received_at: datetime
) -> tuple[list[reference_store.TariffStored], Outgoing]:
    """Store tariff versions (reference_store.store_tariff) and build their records."""
    stored = [reference_store.store_tariff(conn, tariff, received_at) for tariff in tariffs]
    pairs = []
    for tariff, result in zip(tariffs, stored, strict=True):
        cpo = _party(tariff.country_code, tariff.party_id)
        pairs.append((result.key, new_envelope(TariffPublished, submitter=cpo, payload=tariff)))
    return stored, Outgoing(Topic.TARIFF_PUBLISHED, _records(pairs))


def delete_tariff(
    conn: psycopg.Connection[Row], cpo: PartyRef, tariff_id: str, received_at: datetime
) -> tuple[reference_store.TariffDeletion, Outgoing]:
    """Record a tariff's deletion; the record (none unless it was deleted now) tells
    readers of the compacted topic that the latest state of the key is "deleted"."""
    result = reference_store.delete_tariff(conn, cpo, tariff_id, received_at)
    if result is not reference_store.TariffDeletion.DELETED:
        return result, Outgoing(Topic.TARIFF_PUBLISHED, ())
    notice = TariffDeletionNotice(
        country_code=cpo.country_code, party_id=cpo.party_id, id=tariff_id, deleted_at=received_at
    )
    envelope = new_envelope(TariffDeleted, submitter=cpo, payload=notice, occurred_at=received_at)
    key = reference_store.object_key(cpo, tariff_id)
    return result, Outgoing(Topic.TARIFF_PUBLISHED, _records([(key, envelope)]))


def store_locations(
    conn: psycopg.Connection[Row], locations: Sequence[Location]
) -> tuple[list[reference_store.LocationStored], Outgoing]:
    """Store locations as their current versions (reference_store.store_location) and build
    their records."""
    stored = [reference_store.store_location(conn, location) for location in locations]
    pairs = []
    for location, result in zip(locations, stored, strict=True):
        cpo = _party(location.country_code, location.party_id)
        envelope = new_envelope(LocationPublished, submitter=cpo, payload=location)
        pairs.append((result.key, envelope))
    return stored, Outgoing(Topic.LOCATION_PUBLISHED, _records(pairs))


def send_now(settings: Settings, outgoing: Outgoing) -> None:
    """Send with a producer of this call's own and wait for every ack (the CLI's way)."""
    assert settings.kafka_bootstrap_servers
    if outgoing.records:
        name = topic_name(settings.topic_prefix, outgoing.topic)
        asyncio.run(produce(settings.kafka_bootstrap_servers, name, outgoing.records))


def _operator(settings: Settings) -> psycopg.Connection[Row]:
    assert settings.database_url and settings.kafka_bootstrap_servers
    return connect(role_url(settings, DbRole.OPERATOR))


def publish_tariffs(settings: Settings, tariffs: Sequence[Tariff]) -> int:
    """Store and publish tariff versions; returns how many were new."""
    with _operator(settings) as conn:
        stored, outgoing = store_tariffs(conn, tariffs, datetime.now(UTC))
    send_now(settings, outgoing)
    return sum(result.new_version for result in stored)


def publish_locations(settings: Settings, locations: Sequence[Location]) -> int:
    """Store and publish locations; returns how many changed."""
    with _operator(settings) as conn:
        stored, outgoing = store_locations(conn, locations)
    send_now(settings, outgoing)
    return sum(result.revision is not None for result in stored)


def publish_agreements(settings: Settings, agreements: Sequence[Agreement]) -> int:
    hub = PartyRef.parse(settings.hub_party)
    records = [
        (a.agreement_id, new_envelope(AgreementPublished, submitter=hub, payload=a))
        for a in agreements
    ]
    with _operator(settings) as conn:
        added = reference_store.add_agreements(conn, agreements)
    send_now(settings, Outgoing(Topic.AGREEMENT_PUBLISHED, _records(records)))
    return added


def add_partners(settings: Settings, partners: Sequence[tuple[PartyRef, PartnerRole, str]]) -> None:
    assert settings.database_url
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        for party, role, name in partners:
            reference_store.add_partner(conn, party, role, name)
