"""The OCPI door: versions behind a token, the 2.2.1 token header (and the raw form only where
allowed), revoked tokens, request IDs echoed, and OCPI envelopes for what goes wrong."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from pipeline.config import Settings
from schemas.hub.party import PartyRef
from settlement.store import ocpi_tokens, reference_store
from settlement.store.db import connect
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration
PUBLIC = "https://hub.example.test/roam"


@pytest.fixture
def hub(fresh_settings: Settings) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    settings = replace(fresh_settings, public_url=PUBLIC)
    assert settings.database_url
    with connect(settings.database_url) as conn:
        reference_store.add_partner(conn, PartyRef.parse("NL*TNM"), "CPO", "TNM")
        reference_store.add_partner(conn, PartyRef.parse("DE*OLD"), "EMSP", "Old")
        tnm = PartyRef.parse("NL*TNM")
        tokens = {
            "A": ocpi_tokens.issue(conn, tnm, ocpi_tokens.TokenKind.A),
            "C": ocpi_tokens.issue(conn, tnm, ocpi_tokens.TokenKind.C),
            "raw": ocpi_tokens.issue(
                conn, PartyRef.parse("DE*OLD"), ocpi_tokens.TokenKind.C, raw_allowed=True
            ),
            "revoked": ocpi_tokens.issue(conn, tnm, ocpi_tokens.TokenKind.C),
        }
        ocpi_tokens.revoke(conn, ocpi_tokens.token_hash(tokens["revoked"]), "rotated")
        conn.commit()
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, tokens


def _token(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def test_versions_and_details_with_either_token(hub: tuple[httpx.Client, dict[str, str]]) -> None:
    client, tokens = hub
    for kind in ("A", "C"):
        answer = client.get("/ocpi/versions", headers=_token(tokens[kind]))
        assert answer.status_code == 200
        body = answer.json()
        assert body["status_code"] == 1000 and body["timestamp"].endswith("Z")
        assert body["data"] == [{"version": "2.2.1", "url": f"{PUBLIC}/ocpi/2.2.1"}]
        details = client.get("/ocpi/2.2.1", headers=_token(tokens[kind])).json()
        assert details["data"]["version"] == "2.2.1"
        assert isinstance(details["data"]["endpoints"], list)


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "Authorization header is required"),
        ({"Authorization": "Bearer abc"}, "must be: Token"),
        ({"Authorization": "Token " + base64.b64encode(b"nope").decode()}, "unknown token"),
    ],
)
def test_no_or_a_wrong_token_is_401_in_an_envelope(
    hub: tuple[httpx.Client, dict[str, str]], headers: dict[str, str], says: str
) -> None:
    client, _ = hub
    answer = client.get("/ocpi/versions", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["status_code"] == 2000 and says in answer.json()["status_message"]


def test_a_revoked_token_is_refused(hub: tuple[httpx.Client, dict[str, str]]) -> None:
    client, tokens = hub
    answer = client.get("/ocpi/versions", headers=_token(tokens["revoked"]))
    assert answer.status_code == 401 and "revoked" in answer.json()["status_message"]


def test_the_raw_form_only_for_partners_allowed_it(
    hub: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, tokens = hub
    assert client.get(
        "/ocpi/versions", headers={"Authorization": f"Token {tokens['raw']}"}
    ).is_success
    refused = client.get("/ocpi/versions", headers={"Authorization": f"Token {tokens['C']}"})
    assert refused.status_code == 401 and "base64-encoded" in refused.json()["status_message"]


def test_request_ids_are_echoed_or_made(hub: tuple[httpx.Client, dict[str, str]]) -> None:
    client, tokens = hub
    sent = {"X-Request-ID": "req-1", "X-Correlation-ID": "corr-1", **_token(tokens["C"])}
    echoed = client.get("/ocpi/versions", headers=sent)
    assert (echoed.headers["x-request-id"], echoed.headers["x-correlation-id"]) == (
        "req-1",
        "corr-1",
    )
    made = client.get("/ocpi/versions")  # even a 401 carries them
    assert uuid.UUID(made.headers["x-request-id"]) and uuid.UUID(made.headers["x-correlation-id"])


def test_unknown_paths_and_methods_answer_in_the_envelope_elsewhere_as_before(
    hub: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, tokens = hub
    missing = client.get("/ocpi/2.2.1/nothing", headers=_token(tokens["C"]))
    assert missing.status_code == 404 and missing.json()["status_code"] == 2000
    method = client.post("/ocpi/versions", headers=_token(tokens["C"]))
    assert method.status_code == 405 and method.json()["status_code"] == 2000
    finance = client.get("/finance/v1/nothing")
    assert finance.status_code == 404 and "detail" in finance.json()
