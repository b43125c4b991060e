"""Invariant 7 through the real path: every booking, and every `cdr.rated` event, names the
tariff version that priced it by a hash that finds exactly that `tariff_version` row."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from pipeline.config import Settings
from pipeline.kafka.client import read_from_beginning
from pipeline.topics import Topic, topic_name
from schemas.events import CdrRated, parse_envelope
from settlement.store.db import connect
from tests.integration.clearing.helpers import mixed_batch, register_reference_data, submit
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration

# A reversal records the tariff of the charge it reverses under `original`.
_BOOKED_TARIFFS = """
SELECT t.transaction_id, t.kind,
       coalesce(t.rating->'tariff', t.rating->'original'->'tariff') AS tariff
  FROM ledger_transaction t ORDER BY t.booked_at, t.transaction_id
"""
_VERSIONS_BY_HASH = """
SELECT tariff_key, last_updated FROM tariff_version WHERE content_hash = %s
"""


def _key(tariff: dict[str, str]) -> str:
    return f"{tariff['country_code']}*{tariff['party_id']}*{tariff['id'].upper()}"


def test_every_booking_joins_its_tariff_version_by_hash(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    register_reference_data(settings)
    raw, expected = mixed_batch()
    asyncio.run(_clear(settings, submit(settings, raw)))

    with connect(settings.database_url) as conn:
        bookings = conn.execute(_BOOKED_TARIFFS).fetchall()
        assert len(bookings) == expected.ledgered
        assert {b["kind"] for b in bookings} == {"CHARGE", "REVERSAL"}
        for booking in bookings:
            tariff = booking["tariff"]
            versions = conn.execute(_VERSIONS_BY_HASH, (tariff["content_hash"],)).fetchall()
            # exactly the version the booking names: its key and last_updated
            assert versions == [
                {
                    "tariff_key": _key(tariff),
                    "last_updated": datetime.fromisoformat(tariff["last_updated"]),
                }
            ], booking["transaction_id"]
        stored = {
            row["content_hash"]
            for row in conn.execute("SELECT content_hash FROM tariff_version").fetchall()
        }

    # the rated events carry the same hash
    charges = sum(b["kind"] == "CHARGE" for b in bookings)
    topic = topic_name(settings.topic_prefix, Topic.CDR_RATED)
    records = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, topic, charges))
    events = [parse_envelope(r.value or b"") for r in records]
    rated = [e.rated_cdr["tariff"]["content_hash"] for e in events if isinstance(e, CdrRated)]
    assert len(rated) == charges and set(rated) <= stored
