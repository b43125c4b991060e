"""Simulated partners connect over OCPI as real ones do: the credentials handshake against the
hub's API (a real uvicorn), the hub calling each partner's platform back, then tariffs and
locations PUT by each CPO and found in the reference data clearing prices with."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest

from pipeline import reference
from pipeline.config import Settings
from pipeline.simulate import Category, ScenarioConfig, build_reference, category_counts
from pipeline.simulate.over_http import (
    TWIN_PREFIX,
    HttpExpected,
    connect,
    push_reference,
    simulated_partners,
)
from pipeline.simulate.platform import PartnerPlatforms
from pipeline.simulate.scenario import iter_submissions
from pipeline.simulate.via_http import AlreadyConnected, send_over_http
from schemas.hub.party import PartyRef
from settlement.store import books, reference_store
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


def test_a_scenario_over_http_is_answered_and_counted_as_planned(fresh_settings: Settings) -> None:
    """The whole stream over OCPI: every category answered as the door decides, the HTTP
    counts as `HttpExpected` says, and each twin session stored without its CDR."""
    config = ScenarioConfig(cdrs=400, seed=11)
    data = build_reference(config)
    # a tight rate: simulated partners wait out every 429 and send again, losing nothing
    # a burst of one: requests a partner has in flight together arrive within one refill
    with serve(replace(fresh_settings, ocpi_requests_per_s=200.0, ocpi_burst=1.0)) as hub_url:
        run = send_over_http(fresh_settings, hub_url, data, iter_submissions(config, data))
        with pytest.raises(AlreadyConnected, match="connected already"):
            send_over_http(fresh_settings, hub_url, data, iter_submissions(config, data))
    expected = HttpExpected.of(category_counts(config))
    answers = run.tally.answers
    assert answers[Category.VALID.value] == {"201/1000": category_counts(config).valid}
    assert set(answers[Category.FORGED.value]) == {"200/2001"}
    assert set(answers[Category.MALFORMED_JSON.value]) == {"400/2001"}
    assert set(answers[Category.EXACT_DUPLICATE.value]) == {"200/1000"}
    assert set(answers[Category.CONFLICTING_DUPLICATE.value]) == {"200/2001"}
    assert run.tally.posted == config.cdrs and run.partners == len(data.partners)
    assert run.tally.throttled[0] > 0
    assert fresh_settings.database_url
    with connect_db(fresh_settings.database_url) as conn:
        http = books.ingest_counts(conn)
        pushes = conn.execute(
            "SELECT count(*) AS n FROM session_push WHERE url_session_id LIKE %s",
            (TWIN_PREFIX + "%",),
        ).fetchone()
    assert http == {
        "received_http": expected.received_http,
        "accepted_http": expected.accepted_http,
        "duplicates_http": expected.duplicates_http,
        "rejected_at_ingest": expected.rejected_at_ingest,
        "unpublished_http": 0,
    }
    assert run.tally.sessions_without_cdr > 0
    assert pushes is not None and pushes["n"] == 2 * run.tally.sessions_without_cdr
