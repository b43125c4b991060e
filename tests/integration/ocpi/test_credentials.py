"""The partner-initiated credentials handshake against a partner's platform served by a real
HTTP server (tests/integration/ocpi/partner.py): registration, the hub's calls back with token
B, token A's end, token C on the modules, 3001/3002/3003, 405 where the spec says, PUT
rotation, DELETE, a race between two registrations, and no token in a log or a table."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import psycopg
import pytest

from pipeline.config import Settings
from pipeline.hubkeys import load_hub_keyring
from pipeline.ocpi.credentials import CREDENTIALS_BODY_BYTES_MAX
from schemas.hub.party import PartyRef
from settlement.store import ocpi_connections, ocpi_tokens, reference_store
from settlement.store.db import connect
from settlement.store.ocpi_connections import ConnectionEvent, Initiator
from tests.integration.ocpi.partner import Partner, partner_platform
from tests.integration.settlement.http import free_port, serve

pytestmark = pytest.mark.integration
CREDENTIALS = "/ocpi/2.2.1/credentials"
TNM = PartyRef.parse("NL*TNM")


@dataclass
class Hub:
    client: httpx.Client
    settings: Settings
    url: str

    def db(self) -> psycopg.Connection[dict[str, Any]]:
        assert self.settings.database_url
        return connect(self.settings.database_url)

    def invite(self, party: PartyRef = TNM, raw: bool = False) -> str:
        with self.db() as conn:
            token = ocpi_tokens.issue(conn, party, ocpi_tokens.TokenKind.A, raw)
            conn.commit()
        return token

    def call(
        self,
        method: str,
        token: str,
        body: object = None,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        value = token if raw else base64.b64encode(token.encode()).decode()
        return self.client.request(
            method,
            CREDENTIALS,
            json=body,
            headers={"Authorization": f"Token {value}", **(headers or {})},
        )


@pytest.fixture
def hub(fresh_settings: Settings) -> Iterator[Hub]:
    port = free_port()
    settings = replace(
        fresh_settings, public_url=f"http://127.0.0.1:{port}", hub_party="NL*RCH", hub_name="RC"
    )
    assert settings.database_url
    with connect(settings.database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM")
        reference_store.add_partner(conn, PartyRef.parse("DE*EMS"), "EMSP", "EMS")
        conn.commit()
    with serve(settings, port) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Hub(client, settings, url)


@pytest.fixture
def partner() -> Iterator[Partner]:
    with partner_platform(Partner(tokens={"token-b-1"})) as platform:
        yield platform


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def _register(hub: Hub, partner: Partner, token_a: str, token_b: str = "token-b-1") -> str:
    partner.tokens.add(token_b)
    answer = hub.call("POST", token_a, partner.credentials(token_b))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status_code"] == 1000, answer.json()
    token_c: str = answer.json()["data"]["token"]
    return token_c


def test_a_partner_registers_the_hub_calls_back_with_token_b_and_token_a_dies(
    hub: Hub, partner: Partner
) -> None:
    token_a = hub.invite()
    ids = {"X-Request-ID": "reg-req-1", "X-Correlation-ID": "reg-corr-1"}
    answer = hub.call("POST", token_a, partner.credentials("token-b-1"), headers=ids)
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "reg-req-1"
    body = answer.json()
    assert body["status_code"] == 1000
    token_c = body["data"]["token"]
    assert body["data"] == {
        "token": token_c,
        "url": f"{hub.url}/ocpi/versions",
        "roles": [
            {
                "role": "HUB",
                "party_id": "RCH",
                "country_code": "NL",
                "business_details": {"name": "RC"},
            }
        ],
    }
    # before answering, the hub read the partner's versions and 2.2.1 details with token B
    assert [(c.method, c.path, c.token) for c in partner.calls] == [
        ("GET", "/ocpi/versions", "token-b-1"),
        ("GET", "/ocpi/2.2.1", "token-b-1"),
    ]
    assert {c.correlation_id for c in partner.calls} == {"reg-corr-1"}
    assert len({c.request_id for c in partner.calls} | {"reg-req-1"}) == 3
    # token A opens nothing any more; token C opens the modules and the credentials
    assert hub.client.get("/ocpi/versions", headers=_auth(token_a)).status_code == 401
    details = hub.client.get("/ocpi/2.2.1", headers=_auth(token_c))
    assert details.status_code == 200
    assert {"identifier": "credentials", "role": "SENDER", "url": f"{hub.url}{CREDENTIALS}"} in (
        details.json()["data"]["endpoints"]
    )
    again = hub.call("GET", token_c)
    assert again.status_code == 200 and again.json()["data"]["token"] == token_c
    # the connection row: the partner's endpoints, its token sealed, the request's IDs
    with hub.db() as conn:
        (row,) = ocpi_connections.history(conn, TNM)
        stored = conn.execute("SELECT * FROM ocpi_connection").fetchone()
    assert (row.event, row.initiated_by, row.seq) == (
        ConnectionEvent.REGISTERED,
        Initiator.PARTNER,
        1,
    )
    assert (row.ids.request_id, row.ids.correlation_id) == ("reg-req-1", "reg-corr-1")
    assert row.registration is not None
    assert row.registration.version_url == f"{partner.base_url}/ocpi/2.2.1"
    assert [(e.identifier, e.role.value) for e in row.registration.endpoints] == [
        ("credentials", "SENDER"),
        ("cdrs", "SENDER"),
    ]
    assert row.registration.hub_token_hash == ocpi_tokens.token_hash(token_c)
    cdrs = row.registration.endpoint("cdrs", "SENDER")
    assert cdrs is not None and cdrs.url == f"{partner.base_url}/ocpi/2.2.1/cdrs"
    assert row.registration.endpoint("cdrs", "RECEIVER") is None
    assert ocpi_connections.partner_token(load_hub_keyring(hub.settings), row) == "token-b-1"
    assert stored is not None
    assert not any(
        token.encode() in repr(stored).encode() for token in ("token-b-1", token_c, token_a)
    )


def test_a_second_post_is_405_and_get_put_delete_before_registration_are_405(
    hub: Hub, partner: Partner
) -> None:
    token_a = hub.invite()
    for method in ("GET", "PUT", "DELETE"):
        early = hub.call(method, token_a, partner.credentials("token-b-1"))
        assert early.status_code == 405, method
        assert "not registered" in early.json()["status_message"]
    assert partner.calls == []
    token_c = _register(hub, partner, token_a)
    second = hub.call("POST", token_c, partner.credentials("token-b-1"))
    assert second.status_code == 405 and "registered already" in second.json()["status_message"]
    patch = hub.call("PATCH", token_c, {"token": "x"})  # PATCH is n/a for credentials
    assert patch.status_code == 405 and patch.json()["status_code"] == 2000
    # a fresh invitation does not reopen registration while the partner is registered
    assert hub.call("POST", hub.invite(), partner.credentials("token-b-1")).status_code == 405
    assert hub.call("POST", token_a, partner.credentials("token-b-1")).status_code == 401


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("down", "cannot reach"),
        ("html500", "answered HTTP 500 without JSON"),
        ("wrong token", 'answered HTTP 401, OCPI 2000 "unknown token"'),
        ("huge", "more than 1000000 bytes"),
    ],
)
def test_a_partner_api_the_hub_cannot_use_is_3001_and_nothing_changes(
    hub: Hub, partner: Partner, setup: str, says: str
) -> None:
    token_a = hub.invite()
    body = partner.credentials("token-b-1")
    if setup == "down":
        body["url"] = f"http://127.0.0.1:{free_port()}/ocpi/versions"
    elif setup == "wrong token":
        partner.tokens.clear()
    else:
        partner.versions_reply = setup
    answer = hub.call("POST", token_a, body)
    assert answer.status_code == 200
    assert answer.json()["status_code"] == 3001 and says in answer.json()["status_message"]
    assert "token-b-1" not in answer.text
    with hub.db() as conn:
        assert ocpi_connections.current(conn, TNM) is None
    assert hub.client.get("/ocpi/versions", headers=_auth(token_a)).status_code == 200


def test_a_partner_without_2_2_1_is_3002(hub: Hub, partner: Partner) -> None:
    partner.versions = ["2.1.1", "2.2"]
    answer = hub.call("POST", hub.invite(), partner.credentials("token-b-1"))
    assert answer.json()["status_code"] == 3002
    assert answer.json()["status_message"].startswith(
        "the partner speaks 2.1.1, 2.2 (" + partner.versions_url
    )


def test_an_emsp_without_a_cdrs_receiver_is_3003(hub: Hub, partner: Partner) -> None:
    partner.party, partner.role = "DE*EMS", "EMSP"
    token_a = hub.invite(PartyRef.parse("DE*EMS"))
    missing = hub.call("POST", token_a, partner.credentials("token-b-1"))
    assert missing.status_code == 200 and missing.json()["status_code"] == 3003
    assert "cdrs (RECEIVER)" in missing.json()["status_message"]
    partner.endpoints.append(("cdrs", "RECEIVER"))
    assert hub.call("POST", token_a, partner.credentials("token-b-1")).json()["status_code"] == 1000


def test_a_cpo_without_a_credentials_endpoint_is_3003(hub: Hub, partner: Partner) -> None:
    partner.endpoints = [("locations", "SENDER")]
    answer = hub.call("POST", hub.invite(), partner.credentials("token-b-1"))
    assert answer.json()["status_code"] == 3003 and "credentials" in answer.json()["status_message"]


def test_invalid_credentials_are_2001_with_every_violation_and_no_call_out(
    hub: Hub, partner: Partner
) -> None:
    token_a = hub.invite()
    body = partner.credentials("has a space")
    body["url"] = "versions"
    answer = hub.call("POST", token_a, body)
    assert answer.status_code == 200 and answer.json()["status_code"] == 2001
    assert answer.json()["status_message"] == (
        "token: must be printable ASCII without whitespace (U+0021 to U+007E); "
        "url: must be an absolute http or https URL"
    )
    foreign = partner.credentials("token-b-1")
    foreign["roles"][0] |= {"party_id": "OTH"}
    refused = hub.call("POST", token_a, foreign).json()
    assert refused["status_code"] == 2001
    assert refused["status_message"].startswith("roles[0]: NL*OTH is not NL*TNM")
    assert partner.calls == []


def test_invalid_json_is_400_and_an_oversized_body_413(hub: Hub) -> None:
    token_a = hub.invite()
    broken = hub.client.post(CREDENTIALS, content=b"{not json", headers=_auth(token_a))
    assert broken.status_code == 400 and broken.json()["status_code"] == 2001
    big = b'{"token": "' + b"x" * CREDENTIALS_BODY_BYTES_MAX + b'"}'
    too_big = hub.client.post(CREDENTIALS, content=big, headers=_auth(token_a))
    assert (too_big.status_code, too_big.json()["status_code"]) == (413, 2001)
    assert hub.client.post(CREDENTIALS, json={}).status_code == 401


def test_put_fetches_the_endpoints_again_and_rotates_both_tokens(
    hub: Hub, partner: Partner
) -> None:
    old_c = _register(hub, partner, hub.invite())
    partner.calls.clear()
    partner.endpoints.append(("tariffs", "SENDER"))
    partner.tokens.add("token-b-2")
    answer = hub.call(
        "PUT", old_c, partner.credentials("token-b-2"), headers={"X-Request-ID": "put-1"}
    )
    assert answer.status_code == 200 and answer.json()["status_code"] == 1000
    new_c = answer.json()["data"]["token"]
    assert new_c != old_c
    assert [(c.path, c.token) for c in partner.calls] == [
        ("/ocpi/versions", "token-b-2"),
        ("/ocpi/2.2.1", "token-b-2"),
    ]
    assert hub.client.get("/ocpi/2.2.1", headers=_auth(old_c)).status_code == 401
    assert hub.client.get("/ocpi/2.2.1", headers=_auth(new_c)).status_code == 200
    with hub.db() as conn:
        first, second = ocpi_connections.history(conn, TNM)
    assert (first.event, second.event) == (ConnectionEvent.REGISTERED, ConnectionEvent.UPDATED)
    assert second.registration is not None and second.ids.request_id == "put-1"
    assert [e.identifier for e in second.registration.endpoints][-1] == "tariffs"
    assert ocpi_connections.partner_token(load_hub_keyring(hub.settings), second) == "token-b-2"
    # a PUT the partner's API cannot answer changes nothing: the token in force still works
    partner.tokens.clear()
    failed = hub.call("PUT", new_c, partner.credentials("token-b-3"))
    assert failed.json()["status_code"] == 3001
    assert hub.client.get("/ocpi/2.2.1", headers=_auth(new_c)).status_code == 200


def test_delete_unregisters_and_a_new_invitation_registers_again(
    hub: Hub, partner: Partner
) -> None:
    token_c = _register(hub, partner, hub.invite())
    answer = hub.call("DELETE", token_c, headers={"X-Correlation-ID": "bye"})
    assert answer.status_code == 200 and answer.json()["status_code"] == 1000
    assert "data" not in answer.json()
    assert hub.client.get("/ocpi/2.2.1", headers=_auth(token_c)).status_code == 401
    with hub.db() as conn:
        current = ocpi_connections.current(conn, TNM)
    assert current is not None and not current.registered
    assert current.ids.correlation_id == "bye" and current.registration is None
    assert current.hub_token_hash == ocpi_tokens.token_hash(token_c)
    assert hub.call("DELETE", hub.invite()).status_code == 405
    again = _register(hub, partner, hub.invite(), "token-b-9")
    with hub.db() as conn:
        history = ocpi_connections.history(conn, TNM)
    assert [h.event for h in history] == [
        ConnectionEvent.REGISTERED,
        ConnectionEvent.UNREGISTERED,
        ConnectionEvent.REGISTERED,
    ]
    assert hub.client.get("/ocpi/2.2.1", headers=_auth(again)).status_code == 200


def test_a_raw_token_partner_is_called_with_its_token_raw(hub: Hub, partner: Partner) -> None:
    partner.unencoded = True
    token_a = hub.invite(raw=True)
    answer = hub.call("POST", token_a, partner.credentials("token-b-1"), raw=True)
    assert answer.json()["status_code"] == 1000
    assert {c.header for c in partner.calls} == {"Token token-b-1"}
    token_c = answer.json()["data"]["token"]
    raw = hub.client.get("/ocpi/2.2.1", headers={"Authorization": f"Token {token_c}"})
    assert raw.status_code == 200


def test_two_registrations_racing_exactly_one_wins(hub: Hub, partner: Partner) -> None:
    token_a = hub.invite()
    partner.versions_delay_s = 1.0  # both requests are past the door before either writes
    answers: list[httpx.Response] = []

    def post(token_b: str) -> None:
        with httpx.Client(base_url=hub.url, timeout=60) as client:
            partner.tokens.add(token_b)
            answers.append(
                client.post(CREDENTIALS, json=partner.credentials(token_b), headers=_auth(token_a))
            )

    threads = [threading.Thread(target=post, args=(f"race-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 405]
    with hub.db() as conn:
        assert len(ocpi_connections.history(conn, TNM)) == 1
        issued = conn.execute(
            "SELECT count(*) AS n FROM ocpi_token t LEFT JOIN ocpi_token_revocation r "
            "USING (token_hash) WHERE t.kind = 'C' AND r.token_hash IS NULL"
        ).fetchone()
    assert issued is not None and issued["n"] == 1  # the loser's token C was never kept


def test_no_token_reaches_a_log(
    hub: Hub, partner: Partner, caplog: pytest.LogCaptureFixture
) -> None:
    token_a = hub.invite()
    with caplog.at_level(logging.DEBUG):
        token_c = _register(hub, partner, token_a)
        partner.tokens.add("token-b-2")
        hub.call("PUT", token_c, partner.credentials("token-b-2"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "the handshake logs something (httpx's requests at least)"
    for token in (token_a, token_c, "token-b-1", "token-b-2"):
        assert token not in logged
        assert base64.b64encode(token.encode()).decode() not in logged
