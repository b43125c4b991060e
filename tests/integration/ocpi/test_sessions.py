"""The sessions receiver under uvicorn, with the real broker and PostgreSQL: PUT replaces,
PATCH appends charging periods and needs last_updated, every refusal is kept with its
reason, a partner touches only its own sessions, and what is accepted is on the topic, with
the hub's proof, before the answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.config import Settings
from pipeline.hubkeys import load_hub_keyring, record_proof_keys
from pipeline.ocpi.sessions import SESSION_BODY_BYTES_MAX
from schemas.base import loads_exact
from schemas.events import SessionEvent, parse_envelope
from settlement.clearing.proof import Proof, authenticate
from settlement.store.db import connect
from tests.integration.ocpi.sessions import URL, Hub, period, running_hub, session_doc
from tests.integration.ocpi.sessions import body as hub_body

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(fresh_settings: Settings) -> Iterator[Hub]:
    with running_hub(fresh_settings) as running:
        yield running


def _status(answer: object) -> int:
    return int(loads_exact(answer.content)["status_code"])  # type: ignore[attr-defined]


def test_a_put_is_on_the_topic_with_the_hubs_proof_and_reads_back_as_sent(hub: Hub) -> None:
    sent = session_doc()
    answer = hub.put("SES-1", sent)
    assert (answer.status_code, _status(answer)) == (201, 1000)
    assert "data" not in answer.json()
    assert hub.held("SES-1") == sent  # unknown field kept, 0.10000000000000000001 exact

    (record,) = hub.events()
    assert record.key == b"NL*TNM*SES-1"
    keys = record_proof_keys(load_hub_keyring(hub.settings))

    class Keys:
        def hub_key(self, key_id: str) -> bytes | None:
            return keys.get(key_id)

        def partner_key(self, key_id: str) -> None:
            return None

    proof = authenticate(record.headers, record.topic, record.value, Keys(), datetime.now(UTC))
    assert isinstance(proof, Proof) and proof.key_id.startswith("hub-")
    assert record.value is not None
    event = parse_envelope(record.value)
    assert isinstance(event, SessionEvent)
    assert str(event.submitter) == "NL*TNM" and event.session.id == "SES-1"
    assert loads_exact(record.value)["session"] == sent

    (kept,) = hub.pushes()
    assert kept["outcome"] == "ACCEPTED" and kept["http_status"] == 201
    assert kept["event_id"] == event.event_id and bytes(kept["body"]) == hub_body(sent)
    assert kept["request_id"] == answer.headers["x-request-id"]


def test_a_second_put_replaces_the_session_and_its_periods(hub: Hub) -> None:
    first = session_doc(status="ACTIVE", charging_periods=[period("2026-03-04T10:00:00Z", "1.5")])
    assert hub.put("SES-1", first).status_code == 201
    second = session_doc(status="ACTIVE", kwh=Decimal("2.5"), last_updated="2026-03-04T10:30:00Z")
    answer = hub.put("ses-1", second)  # a CiString: the same session
    assert (answer.status_code, _status(answer)) == (200, 1000)
    held = hub.held("SES-1")
    assert "charging_periods" not in held and held["kwh"] == Decimal("2.5")
    assert len(hub.events()) == 2


def test_a_patch_appends_periods_and_replaces_the_rest(hub: Hub) -> None:
    start = session_doc(status="ACTIVE", charging_periods=[period("2026-03-04T10:00:00Z", "1.5")])
    assert hub.put("SES-1", start).status_code == 201
    change = {
        "kwh": Decimal("3.25"),
        "charging_periods": [period("2026-03-04T10:15:00Z", "1.75")],
        "total_cost": {"excl_vat": Decimal("0.80"), "incl_vat": Decimal("0.88")},
        "last_updated": "2026-03-04T10:15:00Z",
    }
    answer = hub.patch("SES-1", change)
    assert (answer.status_code, _status(answer)) == (200, 1000)
    held = hub.held("SES-1")
    assert [p["start_date_time"] for p in held["charging_periods"]] == [
        "2026-03-04T10:00:00Z",
        "2026-03-04T10:15:00Z",
    ]
    assert held["kwh"] == Decimal("3.25") and held["total_cost"]["excl_vat"] == Decimal("0.80")
    assert held["x_vendor"] == start["x_vendor"] and held["status"] == "ACTIVE"
    assert hub.patch(
        "SES-1", {"charging_periods": [], "last_updated": "2026-03-04T10:16:00Z"}
    ).is_success
    assert len(hub.held("SES-1")["charging_periods"]) == 2  # [] changes nothing
    last = loads_exact(hub.events()[-1].value or b"")["session"]
    assert last == hub.held("SES-1")  # the event carries the whole merged session


def test_concurrent_patches_of_one_session_all_land(hub: Hub) -> None:
    assert hub.put("SES-1", session_doc(status="ACTIVE")).status_code == 201
    minutes = range(12)

    def patch(minute: int) -> int:
        stamp = f"2026-03-04T10:{minute:02d}:00Z"
        return hub.patch(
            "SES-1", {"charging_periods": [period(stamp, "0.5")], "last_updated": stamp}
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(patch, minutes)) == {200}
    periods = hub.held("SES-1")["charging_periods"]
    assert sorted(p["start_date_time"] for p in periods) == [
        f"2026-03-04T10:{m:02d}:00Z" for m in minutes
    ]


def test_a_patch_without_last_updated_is_2001_and_changes_nothing(hub: Hub) -> None:
    assert hub.put("SES-1", session_doc()).status_code == 201
    answer = hub.patch("SES-1", {"status": "ACTIVE"})
    assert (answer.status_code, _status(answer)) == (200, 2001)
    assert "last_updated" in answer.json()["status_message"]
    assert hub.held("SES-1")["status"] == "PENDING"
    kept = hub.pushes()[-1]
    assert (kept["outcome"], kept["reason_code"]) == ("REJECTED", "invalid_session")
    assert kept["violations"][0]["path"] == "last_updated"
    assert len(hub.events()) == 1


def test_a_patch_of_a_session_never_put_is_404(hub: Hub) -> None:
    answer = hub.patch("NOPE", {"status": "ACTIVE", "last_updated": "2026-03-04T10:00:00Z"})
    assert (
        answer.status_code == 404
        and "PUT the whole session first" in answer.json()["status_message"]
    )
    assert hub.pushes()[-1]["reason_code"] == "unknown_session"


def test_every_violation_is_listed_with_its_path(hub: Hub) -> None:
    bad = session_doc(id="OTHER", status="RESERVED", kwh=Decimal("-1"))
    del bad["currency"]
    bad["charging_periods"] = [{"start_date_time": "2026-03-04T10:00:00Z", "dimensions": []}]
    answer = hub.put("SES-1", bad)
    assert (answer.status_code, _status(answer)) == (200, 2001)
    message = answer.json()["status_message"]
    for path in (
        "id: must be the session_id of the URL",
        "status: must be one of",
        "kwh:",
        "currency: field required",
        "charging_periods[0].dimensions",
    ):
        assert path in message, (path, message)
    assert hub.get("SES-1").status_code == 404 and hub.events() == []


def test_another_partys_session_is_404_and_nothing_is_stored(hub: Hub) -> None:
    foreign_body = hub.put("SES-1", session_doc(party_id="ABC"), who="TNM")  # body says ABC
    assert (foreign_body.status_code, _status(foreign_body)) == (200, 2001)
    assert (
        "party_id: must be the URL's, the caller's (TNM)" in foreign_body.json()["status_message"]
    )
    answer = hub.client.put(
        "/ocpi/2.2.1/sessions/NL/ABC/SES-1",
        content=hub_body(session_doc(party_id="ABC")),
        headers=hub.headers("TNM"),
    )
    assert (answer.status_code, _status(answer)) == (404, 2000)
    assert hub.events() == []
    assert hub.get("SES-1", who="ABC", url="/ocpi/2.2.1/sessions/NL/ABC").status_code == 404
    assert [(p["outcome"], p["reason_code"], p["session_key"]) for p in hub.pushes()] == [
        ("REJECTED", "invalid_session", "NL*TNM*SES-1"),
        ("REJECTED", "not_owner", None),
    ]
    # and nobody reads another partner's session
    assert hub.put("SES-1", session_doc()).status_code == 201
    peek = hub.client.get(f"{URL}/SES-1", headers=hub.headers("ABC"))
    assert peek.status_code == 404


def test_invalid_json_is_400_and_kept(hub: Hub) -> None:
    answer = hub.client.put(f"{URL}/SES-1", content=b'{"id": "SES-1",', headers=hub.headers())
    assert (answer.status_code, _status(answer)) == (400, 2001)
    (kept,) = hub.pushes()
    assert kept["reason_code"] == "malformed_json" and bytes(kept["body"]) == b'{"id": "SES-1",'
    assert hub.events() == []


def test_a_body_beyond_the_limit_is_413_and_kept_cut(hub: Hub) -> None:
    huge = b'{"id": "' + b"x" * SESSION_BODY_BYTES_MAX + b'"}'
    answer = hub.client.put(f"{URL}/SES-1", content=huge, headers=hub.headers())
    assert (answer.status_code, _status(answer)) == (413, 2001)  # as cdrs, tariffs, locations
    (kept,) = hub.pushes()
    assert kept["body_truncated"] and len(bytes(kept["body"])) == SESSION_BODY_BYTES_MAX


def test_the_registration_token_and_no_token_are_401(hub: Hub) -> None:
    assert hub.put("SES-1", session_doc(), who="A").status_code == 401
    assert hub.client.get(f"{URL}/SES-1").status_code == 401
    assert hub.pushes() == []  # nothing from an unauthenticated caller


def test_an_unstorable_field_is_2001_not_a_500(hub: Hub) -> None:
    answer = hub.client.put(
        f"{URL}/SES-1",
        content=hub_body(session_doc())[:-1] + b',"x_nul":"a\\u0000b","x_big":1e200000}',
        headers=hub.headers(),
    )
    assert (answer.status_code, _status(answer)) == (200, 2001)
    assert "x_nul" in answer.json()["status_message"] and "x_big" in answer.json()["status_message"]


def test_no_broker_is_503_and_nothing_is_accepted(fresh_settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    with running_hub(replace(fresh_settings, kafka_bootstrap_servers=closed)) as hub:
        answer = hub.put("SES-1", session_doc())
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert _status(answer) == 3000
        (kept,) = hub.pushes()
        assert (kept["outcome"], kept["reason_code"]) == ("REJECTED", "broker_unavailable")
        assert hub.get("SES-1").status_code == 404


def test_version_details_list_the_sessions_receiver(hub: Hub) -> None:
    details = hub.client.get("/ocpi/2.2.1", headers=hub.headers()).json()["data"]
    assert {
        "identifier": "sessions",
        "role": "RECEIVER",
        "url": "http://127.0.0.1:8080/ocpi/2.2.1/sessions",
    } in details["endpoints"]


def test_post_and_delete_are_not_allowed(hub: Hub) -> None:
    for method in ("POST", "DELETE"):
        answer = hub.client.request(method, f"{URL}/SES-1", headers=hub.headers())
        assert (answer.status_code, _status(answer)) == (405, 2000)


def test_sessions_share_the_partners_rate_limit(fresh_settings: Settings) -> None:
    """A partner beyond its bucket gets 429 with Retry-After on sessions too, and the push it
    was refused is not stored (it must send it again)."""
    settings = replace(fresh_settings, ocpi_rate_limits="NL*TNM=0.5/2")
    with running_hub(settings) as limited:
        answers = [limited.put(f"SES-{i}", session_doc(f"SES-{i}")) for i in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert _status(answers[2]) == 2000 and int(answers[2].headers["Retry-After"]) >= 1
        assert "NL*TNM may send 0.5 per second" in answers[2].json()["status_message"]
        assert limited.settings.database_url
        with connect(limited.settings.database_url) as conn:
            kept = conn.execute("SELECT url_session_id FROM session_push").fetchall()
        assert sorted(row["url_session_id"] for row in kept) == ["SES-0", "SES-1"]
