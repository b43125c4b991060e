"""Simulated partners connect over OCPI as real ones do: the credentials handshake against the
hub's API (a real uvicorn), the hub calling each partner's platform back, then tariffs and
locations PUT by each CPO and found in the reference data clearing prices with."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pipeline import reference
from pipeline.config import Settings
from pipeline.simulate import ScenarioConfig, build_reference
from pipeline.simulate.over_http import connect, push_reference, simulated_partners
from pipeline.simulate.platform import PartnerPlatforms
from schemas.hub.party import PartyRef
from settlement.store import reference_store
from settlement.store.db import connect as connect_db
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration


def test_simulated_partners_register_and_push_their_reference_data(
    fresh_settings: Settings,
) -> None:
    data = build_reference(ScenarioConfig(cdrs=200, seed=7))
    reference.add_partners(fresh_settings, [(p.party, p.role.value, p.name) for p in data.partners])
    platforms = PartnerPlatforms(simulated_partners(data))
    platforms.start()
    try:
        with serve(fresh_settings) as hub_url:
            connected = asyncio.run(connect(fresh_settings, hub_url, platforms, data.partners))
            pushed = asyncio.run(push_reference(hub_url, connected, data))
            assert len(connected) == len(data.partners) and platforms.calls >= 2 * len(connected)
            some = next(iter(connected.values()))
            details = httpx.get(f"{hub_url}/ocpi/2.2.1", headers=some.headers, timeout=30)
            assert details.json()["status_code"] == 1000  # token C opens the modules
    finally:
        platforms.stop()
    assert pushed == len(data.tariffs) + len(data.locations)
    assert fresh_settings.database_url
    with connect_db(fresh_settings.database_url) as conn:
        snapshot = reference_store.load_snapshot(conn)
    assert sum(len(v) for v in snapshot.tariffs.values()) == len(data.tariffs)
    first = data.locations[0]
    cpo = PartyRef.of(first.country_code, first.party_id)
    assert snapshot.location_zone(cpo, first.id) == first.time_zone
