"""The OCPI Tariffs receiver against the real API, PostgreSQL and broker: versions stored as
`tariffs publish` stores them and priced by the next CDR, DELETE recorded and honoured by
pricing, foreign objects refused, and every request body kept."""

from __future__ import annotations

import asyncio
import copy
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pipeline import reference
from pipeline.clearing.refcache import ReferenceCache
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.ocpi.client_owned import BODY_BYTES_MAX
from pipeline.topics import Topic
from schemas.events import TariffDeleted, TariffPublished, parse_envelope
from schemas.ocpi.cdr import Cdr
from schemas.validation import parse_tariff
from schemas.wire import encode_json_bytes
from settlement.clearing.reference import registered_tariff
from settlement.rating import rate_cdr
from settlement.store import ocpi_pushes, ocpi_receipts, ocpi_tokens, reference_store
from settlement.store.db import connect, connect_async
from settlement.store.reference_store import ReferenceSnapshot
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    register_reference_data,
    sample,
    submit,
)
from tests.integration.clearing.test_batch import _clear
from tests.integration.ocpi.reference_hub import (
    TNM,
    Hub,
    body,
    reference_hub,
    running_reference_hub,
    token_header,
)
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration
__all__ = ["reference_hub"]  # the fixture, imported for pytest

URL = "/tariffs/NL/TNM/AC-STANDARD"


def tariff(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(sample("tariff_nl_tnm_ac.json"))
    data.update(changes)
    return data


def test_put_then_get_returns_the_tariff_with_its_unknown_fields(reference_hub: Hub) -> None:
    sent = tariff(gireve_id="GIR-77")
    sent["elements"][0]["vendor_note"] = {"weight": Decimal("0.125")}
    created = reference_hub.put(URL, sent)
    assert created.status_code == 201 and body(created)["status_code"] == 1000

    read = reference_hub.get(URL)
    assert read.status_code == 200 and body(read)["data"] == sent

    again = reference_hub.put(URL, sent)  # the same version: stored once, published again
    assert again.status_code == 200 and body(again)["status_code"] == 1000
    newer = reference_hub.put(URL, tariff(last_updated="2026-02-01T00:00:00Z"))
    assert newer.status_code == 200
    assert body(reference_hub.get(URL))["data"]["last_updated"] == "2026-02-01T00:00:00Z"
    assert reference_hub.count("tariff_version") == 2

    published = [
        parse_envelope(encode_json_bytes(e)) for e in reference_hub.topic(Topic.TARIFF_PUBLISHED)
    ]
    assert len(published) == 3 and all(isinstance(e, TariffPublished) for e in published)
    first = published[0]
    assert isinstance(first, TariffPublished) and first.submitter == TNM
    assert first.tariff.model_extra == {"gireve_id": "GIR-77"}


def test_lower_case_party_in_the_url_is_the_same_party(reference_hub: Hub) -> None:
    assert reference_hub.put("/tariffs/nl/tnm/ac-standard", tariff()).status_code == 201
    assert reference_hub.get(URL).status_code == 200


def test_a_tariff_received_over_ocpi_prices_the_next_cdr(reference_hub: Hub) -> None:
    settings = reference_hub.settings
    register_reference_data(settings)  # AC-STANDARD of 2026-01-01, by `tariffs publish`
    dearer = tariff(
        last_updated="2026-02-01T00:00:00Z",
        elements=[
            {"price_components": [{"type": "FLAT", "price": Decimal("1.00"), "step_size": 1}]},
            {"price_components": [{"type": "ENERGY", "price": Decimal("0.55"), "step_size": 1}]},
        ],
    )
    assert reference_hub.put(URL, dearer).status_code == 200  # known by the CLI already

    # a CDR (session on 2026-03-03, after both versions) declaring the new version's price:
    # priced by the version of 2026-01-01 it would be a price_discrepancy rejection
    cdr = {k: v for k, v in cdr_dict(2).items() if not k.startswith("total_") or k in _TOTALS}
    del cdr["tariffs"]
    price = rate_cdr(Cdr.model_validate(cdr), parse_tariff(dearer), time_zone="Europe/Amsterdam")
    old = rate_cdr(Cdr.model_validate(cdr), parse_tariff(tariff()), time_zone="Europe/Amsterdam")
    assert price.totals.total_cost.excl_vat != old.totals.total_cost.excl_vat
    cdr["total_cost"] = {"excl_vat": price.totals.total_cost.excl_vat}
    asyncio.run(_clear(settings, submit(settings, [(b"NL*TNM*CDR-2026-0003", envelope(cdr))])))

    assert reference_hub.rows("SELECT reason_code FROM rejection") == []
    (booked,) = reference_hub.rows(
        "SELECT amount_excl_vat, rating FROM ledger_transaction WHERE cdr_key = %s",
        "NL*TNM*CDR-2026-0003",
    )
    version = datetime.fromisoformat(booked["rating"]["tariff"]["last_updated"])
    assert version == datetime(2026, 2, 1, tzinfo=UTC)
    assert booked["amount_excl_vat"] == price.totals.total_cost.excl_vat


_TOTALS = ("total_cost", "total_energy", "total_time", "total_parking_time")  # kept


async def _delete_under_a_worker_cache(hub: Hub) -> tuple[httpx.Response, ReferenceSnapshot]:
    """DELETE between two refreshes of the clearing worker's cache, which must reload."""
    assert hub.settings.database_url
    cache = ReferenceCache()
    conn = await connect_async(role_url(hub.settings, DbRole.WORKER))
    try:
        await cache.refresh(conn)
        answer = await asyncio.to_thread(hub.delete, URL)
        snapshot = await cache.refresh(conn)
        assert cache.reloads == 2
        return answer, snapshot
    finally:
        await conn.close()


def test_delete_hides_the_tariff_from_get_and_from_sessions_that_start_later(
    reference_hub: Hub,
) -> None:
    settings = reference_hub.settings
    register_reference_data(settings)
    deleted_at = datetime.now(UTC)
    answer, snapshot = asyncio.run(_delete_under_a_worker_cache(reference_hub))
    assert answer.status_code == 200 and body(answer)["status_code"] == 1000
    assert reference_hub.get(URL).status_code == 404

    cdr = Cdr.model_validate(cdr_dict(2))  # started in March: priced by the version then
    assert registered_tariff(cdr, TNM, snapshot) is not None
    later = cdr.model_copy(update={"start_date_time": deleted_at + timedelta(seconds=5)})
    assert registered_tariff(later, TNM, snapshot) is None

    asyncio.run(
        _clear(settings, submit(settings, [(b"NL*TNM*CDR-2026-0003", envelope(cdr_dict(2)))]))
    )
    assert reference_hub.rows(
        "SELECT 1 FROM ledger_transaction WHERE cdr_key = %s", "NL*TNM*CDR-2026-0003"
    )

    repeated = reference_hub.delete(URL)
    assert repeated.status_code == 200 and "deleted already" in body(repeated)["status_message"]
    assert reference_hub.count("tariff_lifecycle") == 1
    assert reference_hub.delete("/tariffs/NL/TNM/NEVER-SEEN").status_code == 404
    kinds = [e["type"] for e in reference_hub.topic(Topic.TARIFF_PUBLISHED)]
    assert kinds == ["tariff.published", "tariff.deleted"]
    deletion = parse_envelope(encode_json_bytes(reference_hub.topic(Topic.TARIFF_PUBLISHED)[1]))
    assert isinstance(deletion, TariffDeleted) and deletion.tariff_deletion.id == "AC-STANDARD"

    # a PUT brings it back: GET finds it, and a session from then on is priced again
    assert reference_hub.put(URL, tariff()).status_code == 201
    assert body(reference_hub.get(URL))["data"]["id"] == "AC-STANDARD"
    events = reference_hub.rows("SELECT event FROM tariff_lifecycle ORDER BY at")
    assert [e["event"] for e in events] == ["DELETED", "RESTORED"]


def test_another_partys_url_is_404_and_stores_nothing_but_the_receipt(reference_hub: Hub) -> None:
    sent = tariff(country_code="DE", party_id="OTH")
    refused = reference_hub.put("/tariffs/DE/OTH/AC-STANDARD", sent)
    assert refused.status_code == 404 and body(refused)["status_code"] == 2000
    assert reference_hub.count("tariff_version") == 0
    # the owner stores it; NL*TNM can neither read nor delete it
    assert reference_hub.put("/tariffs/DE/OTH/AC-STANDARD", sent, token="other").status_code == 201
    assert reference_hub.get("/tariffs/DE/OTH/AC-STANDARD").status_code == 404
    assert reference_hub.delete("/tariffs/DE/OTH/AC-STANDARD").status_code == 404
    assert reference_hub.get("/tariffs/DE/OTH/AC-STANDARD", token="other").status_code == 200
    assert reference_hub.count("tariff_lifecycle") == 0
    (kept, deleted) = [r for r in reference_hub.receipts() if r["partner"] == "NL*TNM"]
    assert (kept["http_status"], kept["object_key"]) == (404, None)
    assert bytes(kept["body"]) == encode_json_bytes(sent)
    assert (deleted["method"], deleted["http_status"]) == ("DELETE", 404)


def test_a_body_for_another_party_or_id_than_the_url_is_2001(reference_hub: Hub) -> None:
    answer = reference_hub.put(URL, tariff(party_id="OTH", id="OTHER-ID"))
    assert answer.status_code == 200 and body(answer)["status_code"] == 2001
    message = body(answer)["status_message"]
    assert "party_id: must equal the URL's 'TNM'" in message
    assert "id: must equal the URL's 'AC-STANDARD'" in message
    assert reference_hub.count("tariff_version") == 0


def test_invalid_json_is_400_and_kept(reference_hub: Hub) -> None:
    answer = reference_hub.put(URL, raw=b'{"id": "AC-STANDARD", ')
    assert answer.status_code == 400 and body(answer)["status_code"] == 2001
    (kept,) = reference_hub.receipts()
    assert bytes(kept["body"]) == b'{"id": "AC-STANDARD", ' and kept["http_status"] == 400
    too_deep_to_decode = b"[" * 100_000 + b"]" * 100_000
    assert reference_hub.put(URL, raw=too_deep_to_decode).status_code == 400
    deep = tariff(
        vendor=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    )
    refused = reference_hub.put(URL, deep)
    assert refused.status_code == 200 and "$: nested deeper than" in body(refused)["status_message"]
    assert reference_hub.count("tariff_version") == 0


def test_a_body_over_the_limit_is_413_and_its_head_kept(reference_hub: Hub) -> None:
    huge = tariff(padding="x" * BODY_BYTES_MAX)
    answer = reference_hub.put(URL, huge)
    assert answer.status_code == 413 and body(answer)["status_code"] == 2001
    (kept,) = reference_hub.receipts()
    assert kept["body_truncated"] and len(kept["body"]) == BODY_BYTES_MAX
    assert bytes(kept["body"]) == encode_json_bytes(huge)[:BODY_BYTES_MAX]


def test_every_schema_violation_is_listed_with_its_path(reference_hub: Hub) -> None:
    broken = tariff()
    del broken["currency"]
    broken["elements"][3]["price_components"][0]["price"] = Decimal("-1")
    broken["elements"][1]["restrictions"]["start_time"] = "25:00"
    answer = reference_hub.put(URL, broken)
    assert answer.status_code == 200 and body(answer)["status_code"] == 2001
    message = body(answer)["status_message"]
    for expected in (
        "currency: field required",
        "elements[3].price_components[0].price: must be >= 0",
        "elements[1].restrictions.start_time: must be a time of day",
    ):
        assert expected in message
    assert body(reference_hub.put(URL, [tariff()]))["status_code"] == 2001  # not an object
    assert reference_hub.count("tariff_version") == 0
    assert [r["status_code"] for r in reference_hub.receipts()] == [2001, 2001]


def test_a_changed_tariff_under_a_stored_last_updated_is_2001(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, tariff()).status_code == 201
    changed = reference_hub.put(URL, tariff(currency="GBP"))
    assert (
        body(changed)["status_code"] == 2001
        and "new last_updated" in body(changed)["status_message"]
    )
    assert body(reference_hub.get(URL))["data"]["currency"] == "EUR"


def test_tokens_and_methods(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, tariff(), token="A").status_code == 401
    assert reference_hub.client.put("/ocpi/2.2.1" + URL, json={}).status_code == 401
    assert reference_hub.patch(URL, {"last_updated": "2026-02-01T00:00:00Z"}).status_code == 405
    assert reference_hub.send("POST", URL, tariff()).status_code == 405
    assert reference_hub.receipts() == []  # unauthenticated or not a receiver method


def test_receipts_keep_the_request_ids_and_the_body(reference_hub: Hub) -> None:
    ids = {"X-Request-ID": "req-tariff-1", "X-Correlation-ID": "corr-tariff-1"}
    sent = encode_json_bytes(tariff())
    answer = reference_hub.put(URL, raw=sent, headers=ids)
    assert answer.headers["x-request-id"] == "req-tariff-1"
    reference_hub.delete(URL, headers={"X-Request-ID": "req-tariff-2"})
    put, deleted = reference_hub.receipts()
    assert (put["request_id"], put["correlation_id"]) == ("req-tariff-1", "corr-tariff-1")
    assert bytes(put["body"]) == sent and put["object_key"] == "NL*TNM*AC-STANDARD"
    assert (put["module"], put["method"], put["object_path"]) == (
        "tariffs",
        "PUT",
        "NL/TNM/AC-STANDARD",
    )
    assert (deleted["request_id"], deleted["body"], deleted["status_code"]) == (
        "req-tariff-2",
        None,
        1000,
    )


def test_version_details_list_both_receivers(reference_hub: Hub) -> None:
    endpoints = body(reference_hub.get(""))["data"]["endpoints"]
    listed = {(e["identifier"], e["role"]): e["url"] for e in endpoints}
    public = reference_hub.settings.public_url.rstrip("/")
    assert listed[("tariffs", "RECEIVER")] == f"{public}/ocpi/2.2.1/tariffs"
    assert listed[("locations", "RECEIVER")] == f"{public}/ocpi/2.2.1/locations"


def test_the_cli_and_the_receiver_store_the_same_row(reference_hub: Hub) -> None:
    assert reference_hub.put(URL, tariff()).status_code == 201
    via_http = reference_hub.rows("SELECT content_hash, body FROM tariff_version")
    assert reference.publish_tariffs(reference_hub.settings, [parse_tariff(tariff())]) == 0
    assert reference_hub.rows("SELECT content_hash, body FROM tariff_version") == via_http


def test_an_unreachable_broker_is_3000_after_the_version_is_stored(
    fresh_settings: Settings,
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = replace(fresh_settings, kafka_bootstrap_servers=f"127.0.0.1:{port}")
    assert settings.database_url
    with connect(settings.database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM Charging")
        token = ocpi_tokens.issue(conn, TNM, ocpi_tokens.TokenKind.C)
        conn.commit()
    with serve(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.put(
            "/ocpi/2.2.1" + URL, content=encode_json_bytes(tariff()), headers=token_header(token)
        )
        assert answer.status_code == 200 and body(answer)["status_code"] == 3000
        assert "send it again" in body(answer)["status_message"]
        with connect(settings.database_url) as conn:
            assert conn.execute("SELECT count(*) AS n FROM tariff_version").fetchone()["n"] == 1
            (kept,) = ocpi_receipts.receipts(conn)
        assert kept["status_code"] == 1000  # the body was accepted and stored
        read = client.get("/ocpi/2.2.1" + URL, headers=token_header(token))
        assert read.status_code == 200  # PostgreSQL is what the hub answers from


def test_every_push_is_counted_and_every_refusal_listed(reference_hub: Hub) -> None:
    """`counts` (pushes_http) and `rejected pushes` read the receipts: received = accepted +
    refused per module, each refusal with the answer the partner got."""
    assert reference_hub.put(URL, tariff()).status_code == 201
    refused = reference_hub.put(URL, tariff(currency="EURO"))
    assert body(refused)["status_code"] == 2001
    assert reference_hub.put("/tariffs/NL/TNM/AC-2", tariff(id="AC-2"), token="other").status_code
    assert reference_hub.settings.database_url
    with connect(reference_hub.settings.database_url) as conn:
        counted = ocpi_pushes.counts(conn)
        listed = ocpi_pushes.refused(conn, "tariffs")
        theirs = ocpi_pushes.refused(conn, partner="DE*OTH")
        sessions = ocpi_pushes.refused(conn, "sessions")
    assert counted["tariffs"] == {"received": 3, "accepted": 1, "refused": 2}
    assert (
        counted["sessions"] == counted["locations"] == {"received": 0, "accepted": 0, "refused": 0}
    )
    assert [row["partner"] for row in listed] == ["DE*OTH", "NL*TNM"]  # newest first
    assert listed[1]["status_code"] == 2001 and "currency" in listed[1]["message"]
    assert len(theirs) == 1 and theirs[0]["object_path"].startswith("NL/TNM/AC-2")
    assert sessions == []


def test_tariffs_share_the_partners_rate_limit(fresh_settings: Settings) -> None:
    settings = replace(fresh_settings, ocpi_rate_limits="NL*TNM=0.5/1")
    with running_reference_hub(settings) as limited:
        first, second = limited.put(URL, tariff()), limited.put(URL, tariff())
        assert (first.status_code, second.status_code) == (201, 429)
        assert int(second.headers["Retry-After"]) >= 1
        assert limited.count("ocpi_reference_receipt") == 1  # refused before it was read
