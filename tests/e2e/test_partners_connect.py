"""`roamclear partners connect`, run as a process against a partner's platform served by a
real HTTP server (tests/integration/ocpi/partner.py), while the hub's API serves the partner's
call back: the hub-initiated handshake end to end, each failure as one line, and
`partners connections` showing the result without a token."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest

from pipeline.config import Settings
from pipeline.hubkeys import hub_key_env, load_hub_keyring
from schemas.hub.party import PartyRef
from settlement.store import ocpi_connections, reference_store
from settlement.store.db import connect
from settlement.store.ocpi_connections import Initiator
from tests.e2e.cli import roamclear
from tests.integration.ocpi.partner import Partner, partner_platform
from tests.integration.settlement.http import free_port, serve

pytestmark = pytest.mark.e2e
TNM = PartyRef.parse("NL*TNM")
TOKEN_A = "partner-token-a"


@dataclass
class Stage:
    settings: Settings
    env: dict[str, str]
    hub_url: str
    partner: Partner

    def connect(self, *extra: str, versions_url: str | None = None) -> tuple[int, str, str]:
        done = roamclear(
            self.env,
            "partners",
            "connect",
            "--id",
            "NL*TNM",
            "--versions-url",
            versions_url or self.partner.versions_url,
            "--token",
            TOKEN_A,
            *extra,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def stage(fresh_settings: Settings) -> Iterator[Stage]:
    port = free_port()
    settings = replace(fresh_settings, public_url=f"http://127.0.0.1:{port}")
    assert settings.database_url and settings.kafka_bootstrap_servers
    with connect(settings.database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM")
        conn.commit()
    env = {
        **os.environ,
        **hub_key_env(settings),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
        "ROAMCLEAR_HOME": str(settings.home),
        "ROAMCLEAR_PUBLIC_URL": settings.public_url,
        "ROAMCLEAR_HUB_PARTY": "FR*107",
        "ROAMCLEAR_HUB_NAME": "RC pre-production",
    }
    with (
        serve(settings, port) as hub_url,
        partner_platform(Partner(tokens={TOKEN_A})) as partner,
    ):
        yield Stage(settings, env, hub_url, partner)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def test_the_hub_connects_a_partner_from_its_side(stage: Stage) -> None:
    code, out, err = stage.connect("--json")
    assert code == 0, err
    shown = json.loads(out)
    partner = stage.partner
    assert shown["connected"] is True
    assert (shown["partner"], shown["state"], shown["initiated_by"], shown["version"]) == (
        "NL*TNM",
        "REGISTERED",
        "HUB",
        "2.2.1",
    )
    assert [e["identifier"] for e in shown["endpoints"]] == ["credentials", "cdrs"]
    # the partner got the hub's credentials (role HUB only) and called the hub back with them
    (hub_credentials,) = partner.received
    hub_token = hub_credentials["token"]
    assert hub_credentials["url"] == f"{stage.hub_url}/ocpi/versions"
    assert hub_credentials["roles"] == [
        {
            "role": "HUB",
            "party_id": "107",
            "country_code": "FR",
            "business_details": {"name": "RC pre-production"},
        }
    ]
    assert partner.callback == [200, 200]
    assert [(c.method, c.path, c.token) for c in partner.calls] == [
        ("GET", "/ocpi/versions", TOKEN_A),
        ("GET", "/ocpi/2.2.1", TOKEN_A),
        ("POST", "/ocpi/2.2.1/credentials", TOKEN_A),
    ]
    assert {c.correlation_id for c in partner.calls} == {shown["correlation_id"]}
    assert partner.calls[-1].request_id == shown["request_id"]
    # the partner's token C is stored sealed and opens with the hub key; the token the hub
    # issued opens the hub's modules for the partner
    assert partner.token_c is not None
    with connect(stage.env["DATABASE_URL"]) as conn:
        found = ocpi_connections.current(conn, TNM)
    assert found is not None and found.initiated_by is Initiator.HUB
    keyring = load_hub_keyring(stage.settings)
    assert ocpi_connections.partner_token(keyring, found) == partner.token_c
    with httpx.Client(base_url=stage.hub_url) as client:
        assert client.get("/ocpi/2.2.1", headers=_auth(hub_token)).status_code == 200
    for secret in (TOKEN_A, hub_token, partner.token_c):
        assert secret not in out and secret not in err
    # `partners connections` shows it, never a token; a second connect is refused
    listed = roamclear(stage.env, "partners", "connections", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["partner"], row["state"], row["initiated_by"]) == ("NL*TNM", "REGISTERED", "HUB")
    table = roamclear(stage.env, "partners", "connections")
    assert table.returncode == 0 and "NL*TNM" in table.stdout and "REGISTERED" in table.stdout
    for secret in (TOKEN_A, hub_token, partner.token_c):
        assert secret not in listed.stdout + table.stdout
    code, _, err = stage.connect()
    assert code == 2 and "NL*TNM is connected already" in err


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("down", "cannot reach http://127.0.0.1:"),
        ("no 2.2.1", "the partner speaks 2.1.1 ("),
        ("no credentials endpoint", "lack what the hub needs: credentials"),
        ("hub unreachable", '3001 "cannot use your API"; the partner calls the hub back'),
        ("foreign roles", "the hub unregistered at the partner again"),
    ],
)
def test_each_failure_is_one_line_and_leaves_no_token_open(
    stage: Stage, case: str, says: str
) -> None:
    partner = stage.partner
    versions_url = None
    if case == "down":
        versions_url = f"http://127.0.0.1:{free_port()}/ocpi/versions"
    elif case == "no 2.2.1":
        partner.versions = ["2.1.1"]
    elif case == "no credentials endpoint":
        partner.endpoints = [("cdrs", "SENDER")]
    elif case == "hub unreachable":
        stage.env["ROAMCLEAR_PUBLIC_URL"] = f"http://127.0.0.1:{free_port()}"
    else:
        partner.answer_roles = [
            {"role": "CPO", "party_id": "OTH", "country_code": "NL",
             "business_details": {"name": "someone else"}}
        ]  # fmt: skip
    code, out, err = stage.connect("--json", versions_url=versions_url)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    shown = json.loads(out)
    assert shown["connected"] is False and says in shown["error"]
    expected_status = {"down": 3001, "no 2.2.1": 3002, "no credentials endpoint": 3003}
    if case in expected_status:
        assert shown["status_code"] == expected_status[case]
        assert "POST" not in {c.method for c in partner.calls}  # no POST without what it needs
    if case == "foreign roles":
        assert partner.calls[-1].method == "DELETE" and partner.calls[-1].token == partner.token_c
    with connect(stage.env["DATABASE_URL"]) as conn:
        assert ocpi_connections.current(conn, TNM) is None
        open_tokens = conn.execute(
            "SELECT count(*) AS n FROM ocpi_token t LEFT JOIN ocpi_token_revocation r "
            "USING (token_hash) WHERE r.token_hash IS NULL"
        ).fetchone()
    assert open_tokens is not None and open_tokens["n"] == 0


def test_a_partner_that_reads_raw_tokens_is_connected_with_raw_tokens(stage: Stage) -> None:
    stage.partner.unencoded = True
    code, _, err = stage.connect("--raw-token")
    assert code == 0, err
    assert {c.header for c in stage.partner.calls} == {f"Token {TOKEN_A}"}
    assert stage.partner.callback == [200, 200]  # the hub took its own token back unencoded
    with connect(stage.env["DATABASE_URL"]) as conn:
        found = ocpi_connections.current(conn, TNM)
    assert found is not None and found.registration is not None
    assert found.registration.token_unencoded
