"""The OCPI Locations receiver against the real API, PostgreSQL and broker: PUT and PATCH at
Location, EVSE and Connector depth, each a new whole-Location version with its parents'
last_updated set; 2003 for what the hub does not hold; the zone clearing prices with."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pipeline import reference
from pipeline.topics import Topic
from schemas.events import LocationPublished, parse_envelope
from schemas.hub.party import PartyRef
from schemas.validation import parse_location
from schemas.wire import encode_json_bytes
from settlement.store import reference_store
from settlement.store.db import connect
from tests.integration.clearing.helpers import sample
from tests.integration.ocpi.reference_hub import Hub, body, reference_hub

pytestmark = pytest.mark.integration
__all__ = ["reference_hub"]  # the fixture, imported for pytest

URL = "/locations/NL/TNM/LOC-AMS-0001"
EVSE_URL = URL + "/EVSE-0001-1"
CONNECTOR_URL = EVSE_URL + "/1"
T0 = "2026-01-01T00:00:00Z"


def location(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(sample("location_nl_tnm_ams.json"))
    data.update(changes)
    return data


def evse(uid: str = "EVSE-0001-2", **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(location()["evses"][0])
    data.update(uid=uid, evse_id=f"NL*TNM*E{uid[-6:].replace('-', '')}", **changes)
    return data


def connector(connector_id: str = "2", **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(location()["evses"][0]["connectors"][0])
    data.update(id=connector_id, **changes)
    return data


def stored(hub: Hub) -> dict[str, Any]:
    document: dict[str, Any] = body(hub.get(URL))["data"]
    return document


def test_put_then_get_at_every_depth_keeps_unknown_fields(reference_hub: Hub) -> None:
    sent = location(gireve_id="GIR-LOC-1", operator={"name": "TNM Operations"})
    sent["evses"][0]["vendor_slot"] = 7
    sent["evses"][0]["connectors"][0]["cable_colour"] = "black"
    created = reference_hub.put(URL, sent)
    assert created.status_code == 201 and body(created)["status_code"] == 1000
    assert stored(reference_hub) == sent
    assert body(reference_hub.get(EVSE_URL))["data"] == sent["evses"][0]
    assert body(reference_hub.get(CONNECTOR_URL))["data"] == sent["evses"][0]["connectors"][0]
    assert body(reference_hub.get(URL.lower()))["data"]["id"] == "LOC-AMS-0001"  # CiStrings

    again = reference_hub.put(URL, sent)
    assert again.status_code == 200 and "no change" in body(again)["status_message"]
    assert reference_hub.count("location_version") == 1
    for missing in (URL + "X", EVSE_URL + "X", CONNECTOR_URL + "X", "/locations/DE/OTH/L1"):
        assert reference_hub.get(missing).status_code == 404, missing
    (published,) = [
        parse_envelope(encode_json_bytes(e)) for e in reference_hub.topic(Topic.LOCATION_PUBLISHED)
    ][:1]
    assert isinstance(published, LocationPublished)
    assert published.location.model_extra == {
        "gireve_id": "GIR-LOC-1",
        "operator": {"name": "TNM Operations"},
    }


def test_an_evse_put_adds_it_and_sets_the_locations_last_updated(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, location()).status_code == 201
    later = "2026-02-01T10:00:00Z"
    added = reference_hub.put(URL + "/EVSE-0001-2", evse(last_updated=later))
    assert added.status_code == 201 and body(added)["status_code"] == 1000
    document = stored(reference_hub)
    assert [e["uid"] for e in document["evses"]] == ["EVSE-0001-1", "EVSE-0001-2"]
    assert document["last_updated"] == later

    replaced = reference_hub.put(
        URL + "/EVSE-0001-2", evse(status="CHARGING", last_updated="2026-02-01T11:00:00Z")
    )
    assert replaced.status_code == 200
    document = stored(reference_hub)
    assert document["evses"][1]["status"] == "CHARGING"
    assert document["last_updated"] == "2026-02-01T11:00:00Z"
    assert reference_hub.count("location_version") == 3
    # every update went out as the whole Location, newest last
    documents = [e["location"] for e in reference_hub.topic(Topic.LOCATION_PUBLISHED)]
    assert len(documents) == 3
    assert parse_location(documents[-1]) == parse_location(document)


def test_a_connector_put_and_patch_set_both_parents_last_updated(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, location()).status_code == 201
    t1 = "2026-02-02T08:00:00Z"
    added = reference_hub.put(EVSE_URL + "/2", connector(last_updated=t1))
    assert added.status_code == 201
    document = stored(reference_hub)
    assert [c["id"] for c in document["evses"][0]["connectors"]] == ["1", "2"]
    assert document["evses"][0]["last_updated"] == t1 and document["last_updated"] == t1

    t2 = "2026-02-03T08:00:00Z"
    patched = reference_hub.patch(
        CONNECTOR_URL, {"tariff_ids": ["AC-STANDARD"], "last_updated": t2}
    )
    assert patched.status_code == 200 and body(patched)["status_code"] == 1000
    document = stored(reference_hub)
    first = document["evses"][0]["connectors"][0]
    assert first["tariff_ids"] == ["AC-STANDARD"] and first["max_amperage"] == 32
    assert (first["last_updated"], document["evses"][0]["last_updated"]) == (t2, t2)
    assert document["last_updated"] == t2


def test_an_evse_patch_changes_only_what_it_sends(reference_hub: Hub) -> None:
    sent = location()
    sent["evses"][0]["vendor_slot"] = 7
    assert reference_hub.put(URL, sent).status_code == 201
    t1 = "2026-03-01T09:00:00Z"
    removed = reference_hub.patch(EVSE_URL, {"status": "REMOVED", "last_updated": t1})
    assert removed.status_code == 200 and body(removed)["status_code"] == 1000
    document = stored(reference_hub)
    expected = {**sent["evses"][0], "status": "REMOVED", "last_updated": t1}
    assert document["evses"][0] == expected and document["last_updated"] == t1
    # a stale child update does not move the parent's last_updated backwards
    reference_hub.patch(EVSE_URL, {"status": "AVAILABLE", "last_updated": T0})
    assert stored(reference_hub)["last_updated"] == t1

    renamed = reference_hub.patch(URL, {"name": "Centraal", "last_updated": "2026-03-02T00:00:00Z"})
    assert renamed.status_code == 200
    document = stored(reference_hub)
    assert document["name"] == "Centraal" and document["evses"][0]["vendor_slot"] == 7


def test_a_patch_without_last_updated_is_2001_and_stores_nothing(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, location()).status_code == 201
    for url in (URL, EVSE_URL, CONNECTOR_URL):
        answer = reference_hub.patch(url, {"status": "CHARGING"} if url == EVSE_URL else {})
        assert answer.status_code == 200 and body(answer)["status_code"] == 2001, url
        assert "last_updated: required in every PATCH" in body(answer)["status_message"]
    assert reference_hub.count("location_version") == 1


def test_what_the_hub_does_not_hold_is_2003(reference_hub: Hub) -> None:
    unknown_location = reference_hub.put(URL + "/EVSE-0001-2", evse())
    assert unknown_location.status_code == 200 and body(unknown_location)["status_code"] == 2003
    assert "unknown location NL*TNM*LOC-AMS-0001" in body(unknown_location)["status_message"]
    patch = {"status": "CHARGING", "last_updated": T0}
    assert body(reference_hub.patch(URL, {"last_updated": T0}))["status_code"] == 2003
    assert reference_hub.put(URL, location()).status_code == 201
    assert body(reference_hub.patch(URL + "/NOPE", patch))["status_code"] == 2003
    assert body(reference_hub.put(URL + "/NOPE/1", connector("1")))["status_code"] == 2003
    assert body(reference_hub.patch(EVSE_URL + "/9", {"last_updated": T0}))["status_code"] == 2003
    assert reference_hub.count("location_version") == 1
    assert [r["status_code"] for r in reference_hub.receipts()] == [
        2003,
        2003,
        1000,
        2003,
        2003,
        2003,
    ]


def test_ids_and_parties_must_match_the_url(reference_hub: Hub) -> None:
    foreign = reference_hub.put(
        "/locations/DE/OTH/LOC-AMS-0001", location(country_code="DE", party_id="OTH")
    )
    assert foreign.status_code == 404
    assert reference_hub.patch("/locations/DE/OTH/L1/E1", {"last_updated": T0}).status_code == 404
    wrong = reference_hub.put(URL, location(id="LOC-OTHER", party_id="OTH"))
    assert body(wrong)["status_code"] == 2001
    assert "id: must equal the URL's 'LOC-AMS-0001'" in body(wrong)["status_message"]
    assert "party_id: must equal the URL's 'TNM'" in body(wrong)["status_message"]
    assert reference_hub.put(URL, location()).status_code == 201
    uid = reference_hub.put(URL + "/EVSE-9", evse("EVSE-8"))
    assert "uid: must equal the URL's 'EVSE-9'" in body(uid)["status_message"]
    other = reference_hub.patch(CONNECTOR_URL, {"id": "2", "last_updated": T0})
    assert body(other)["status_code"] == 2001
    long_id = reference_hub.put(URL + "/" + "E" * 37, evse("E" * 37))
    assert "url.evse_uid: at most 36 characters" in body(long_id)["status_message"]
    assert reference_hub.count("location_version") == 1
    assert (
        reference_hub.rows(
            "SELECT count(*) AS n FROM ocpi_reference_receipt WHERE http_status = 404"
        )[0]["n"]
        == 2
    )


def test_bad_bodies_get_400_or_2001_with_every_path(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, raw=b"<location/>").status_code == 400
    broken = location(time_zone="Mars/Olympus", coordinates={"latitude": "north"})
    broken["evses"][0]["status"] = "BROKEN"
    del broken["evses"][0]["connectors"][0]["standard"]
    answer = reference_hub.put(URL, broken)
    assert answer.status_code == 200 and body(answer)["status_code"] == 2001
    message = body(answer)["status_message"]
    for expected in (
        "time_zone: must be an IANA time zone",
        "coordinates.longitude: field required",
        "evses[0].status: must be one of",
        "evses[0].connectors[0].standard: field required",
    ):
        assert expected in message
    assert reference_hub.put(URL, location()).status_code == 201
    bad_patch = reference_hub.patch(EVSE_URL, {"status": "BROKEN", "last_updated": T0})
    assert "status: must be one of" in body(bad_patch)["status_message"]
    assert body(reference_hub.patch(EVSE_URL, ["status"]))["status_code"] == 2001
    assert [r["http_status"] for r in reference_hub.receipts()] == [400, 200, 201, 200, 200]
    assert bytes(reference_hub.receipts()[0]["body"]) == b"<location/>"


def test_token_a_is_401_and_nothing_is_kept(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, location(), token="A").status_code == 401
    assert reference_hub.patch(EVSE_URL, {"last_updated": T0}, token="A").status_code == 401
    assert reference_hub.get(URL, token="A").status_code == 401
    assert reference_hub.send("DELETE", URL).status_code == 405
    assert reference_hub.receipts() == []


def test_receipts_name_the_request_that_delivered_each_version(reference_hub: Hub) -> None:
    reference_hub.put(URL, location(), headers={"X-Request-ID": "loc-1", "X-Correlation-ID": "c-9"})
    reference_hub.patch(
        EVSE_URL, {"status": "CHARGING", "last_updated": T0}, headers={"X-Request-ID": "loc-2"}
    )
    put, patch = reference_hub.receipts()
    assert (put["request_id"], put["correlation_id"], put["method"]) == ("loc-1", "c-9", "PUT")
    assert (patch["request_id"], patch["method"], patch["object_path"]) == (
        "loc-2",
        "PATCH",
        "NL/TNM/LOC-AMS-0001/EVSE-0001-1",
    )
    assert patch["object_key"] == "NL*TNM*LOC-AMS-0001" and patch["status_code"] == 1000


def test_clearing_reads_the_zone_and_a_status_patch_leaves_its_cache_alone(
    reference_hub: Hub,
) -> None:
    assert reference_hub.settings.database_url
    with connect(reference_hub.settings.database_url) as conn:
        fingerprint = conn.execute(reference_store.FINGERPRINT_QUERY).fetchone()
    reference_hub.put(URL, location())
    reference_hub.patch(EVSE_URL, {"status": "CHARGING", "last_updated": T0})
    reference_hub.patch(EVSE_URL, {"status": "AVAILABLE", "last_updated": T0})
    with connect(reference_hub.settings.database_url) as conn:
        after_status = conn.execute(reference_store.FINGERPRINT_QUERY).fetchone()
        assert (
            reference_store.load_snapshot(conn).location_zone(
                PartyRef.parse("NL*TNM"), "loc-ams-0001"
            )
            == "Europe/Amsterdam"
        )
    assert after_status != fingerprint  # the location itself was new
    reference_hub.patch(EVSE_URL, {"status": "CHARGING", "last_updated": T0})
    with connect(reference_hub.settings.database_url) as conn:
        assert conn.execute(reference_store.FINGERPRINT_QUERY).fetchone() == after_status
    moved = reference_hub.patch(URL, {"time_zone": "Europe/London", "last_updated": T0})
    assert body(moved)["status_code"] == 1000
    with connect(reference_hub.settings.database_url) as conn:
        snapshot = reference_store.load_snapshot(conn)
    assert snapshot.location_zone(PartyRef.parse("NL*TNM"), "LOC-AMS-0001") == "Europe/London"
    assert reference_hub.count("location_zone") == 2
    assert reference_hub.count("location_version") == 5


def test_concurrent_patches_of_one_location_lose_nothing(reference_hub: Hub) -> None:
    sent = location(evses=[evse(f"EVSE-{i:04d}-1") for i in range(12)])
    assert reference_hub.put(URL, sent).status_code == 201

    def patch(index: int) -> int:
        url = f"{URL}/EVSE-{index:04d}-1"
        # the same last_updated for all: within a second, as a busy site reports them
        return reference_hub.patch(url, {"status": "CHARGING", "last_updated": T0}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(patch, range(12))) == [200] * 12
    document = stored(reference_hub)
    assert [e["status"] for e in document["evses"]] == ["CHARGING"] * 12
    assert reference_hub.count("location_version") == 13


def test_the_cli_publishes_through_the_same_path(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, location()).status_code == 201
    assert reference.publish_locations(reference_hub.settings, [parse_location(location())]) == 0
    changed = location(name="Published by the operator")
    assert reference.publish_locations(reference_hub.settings, [parse_location(changed)]) == 1
    assert stored(reference_hub)["name"] == "Published by the operator"
