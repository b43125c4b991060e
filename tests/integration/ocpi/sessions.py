"""Shared set-up for the sessions tests: a hub with two CPOs and their tokens, a session
factory, and reading back what the receiver produced and kept."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pipeline.config import Settings
from pipeline.kafka.client import Record, read_from_beginning, records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.wire import encode_json_bytes
from settlement.store import ocpi_tokens, reference_store
from settlement.store.db import Row, connect
from tests.integration.settlement.http import serve

TNM = PartyRef.parse("NL*TNM")
ABC = PartyRef.parse("NL*ABC")
EMP = PartyRef.parse("DE*EMP")
URL = "/ocpi/2.2.1/sessions/NL/TNM"


def session_doc(session_id: str = "SES-1", **changes: Any) -> dict[str, Any]:
    """An OCPI 2.2.1 Session of NL*TNM for a DE*EMP driver (after the spec's example 1),
    numbers exact, with a vendor field the hub must keep."""
    document: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "TNM",
        "id": session_id,
        "start_date_time": "2026-03-04T10:00:00Z",
        "kwh": loads_exact(b"0.0"),
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMP",
            "uid": "123abc",
            "type": "RFID",
            "contract_id": "DE-EMP-C12345678-S",
        },
        "auth_method": "WHITELIST",
        "location_id": "LOC1",
        "evse_uid": "3256",
        "connector_id": "1",
        "currency": "EUR",
        "status": "PENDING",
        "last_updated": "2026-03-04T10:00:00Z",
        "x_vendor": {"meter": "M-7", "ratio": loads_exact(b"0.10000000000000000001")},
    }
    document.update(copy.deepcopy(changes))
    return document


def period(start: str, kwh: str) -> dict[str, Any]:
    return {
        "start_date_time": start,
        "dimensions": [{"type": "ENERGY", "volume": loads_exact(kwh.encode())}],
    }


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def body(document: Any) -> bytes:
    return encode_json_bytes(document)


@dataclass(frozen=True, slots=True)
class Hub:
    settings: Settings
    client: httpx.Client
    tokens: dict[str, str]  # TNM, ABC (kind C) and A (TNM's registration token)

    def headers(self, who: str = "TNM", **extra: str) -> dict[str, str]:
        return {**token_header(self.tokens[who]), "Content-Type": "application/json", **extra}

    def put(self, session_id: str, document: Any, who: str = "TNM") -> httpx.Response:
        return self.client.put(
            f"{URL}/{session_id}", content=body(document), headers=self.headers(who)
        )

    def patch(self, session_id: str, document: Any, who: str = "TNM") -> httpx.Response:
        return self.client.patch(
            f"{URL}/{session_id}", content=body(document), headers=self.headers(who)
        )

    def get(self, session_id: str, who: str = "TNM", url: str = URL) -> httpx.Response:
        return self.client.get(f"{url}/{session_id}", headers=self.headers(who))

    def held(self, session_id: str) -> Any:
        answer = self.get(session_id)
        assert answer.status_code == 200, answer.text
        return loads_exact(answer.content)["data"]

    def events(self) -> list[Record]:
        """Every record on session.events."""
        bootstrap = self.settings.kafka_bootstrap_servers
        assert bootstrap is not None
        topic = topic_name(self.settings.topic_prefix, Topic.SESSION_EVENTS)
        count = asyncio.run(records_in_topic(bootstrap, topic))
        return asyncio.run(read_from_beginning(bootstrap, topic, count))

    def pushes(self) -> list[Row]:
        assert self.settings.database_url
        with connect(self.settings.database_url) as conn:
            return conn.execute("SELECT * FROM session_push ORDER BY push_id").fetchall()


def register_partners(settings: Settings) -> dict[str, str]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM Charging")
        reference_store.add_partner(conn, ABC, "CPO", "ABC Laden")
        reference_store.add_partner(conn, EMP, "EMSP", "EMP Mobility")
        tokens = {
            "TNM": ocpi_tokens.issue(conn, TNM, ocpi_tokens.TokenKind.C),
            "ABC": ocpi_tokens.issue(conn, ABC, ocpi_tokens.TokenKind.C),
            "A": ocpi_tokens.issue(conn, TNM, ocpi_tokens.TokenKind.A),
        }
        conn.commit()
    return tokens


@contextmanager
def running_hub(settings: Settings) -> Iterator[Hub]:
    tokens = register_partners(settings)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Hub(settings, client, tokens)
