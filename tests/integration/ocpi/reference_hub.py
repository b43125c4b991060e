"""The hub under uvicorn with two CPOs holding OCPI tokens, for the tariffs and locations
receivers' tests: NL*TNM (token C, and a token A it no longer uses) and DE*OTH (token C).

    def test_x(reference_hub: Hub) -> None:
        answer = reference_hub.put("/tariffs/NL/TNM/AC-1", tariff_json)
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pipeline.config import Settings
from pipeline.kafka.client import read_from_beginning, records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.wire import encode_json_bytes
from settlement.store import ocpi_tokens, reference_store
from settlement.store.db import Row, connect
from tests.integration.settlement.http import serve

TNM = PartyRef.parse("NL*TNM")
OTH = PartyRef.parse("DE*OTH")
BASE = "/ocpi/2.2.1"


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@dataclass(frozen=True)
class Hub:
    settings: Settings
    client: httpx.Client
    tokens: dict[str, str]  # C (NL*TNM), A (NL*TNM), other (DE*OTH's C)

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str = "C",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = raw if raw is not None else None if body is None else encode_json_bytes(body)
        return self.client.request(
            method,
            BASE + path,
            content=content,
            headers={
                **token_header(self.tokens[token]),
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )

    def put(self, path: str, body: Any = None, **options: Any) -> httpx.Response:
        return self.send("PUT", path, body, **options)

    def patch(self, path: str, body: Any = None, **options: Any) -> httpx.Response:
        return self.send("PATCH", path, body, **options)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.send("GET", path, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.send("DELETE", path, **options)

    def rows(self, query: str, *params: object) -> list[Row]:
        assert self.settings.database_url
        with connect(self.settings.database_url) as conn:
            return conn.execute(query, params).fetchall()

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def receipts(self) -> list[Row]:
        return self.rows("SELECT * FROM ocpi_reference_receipt ORDER BY receipt_id")

    def topic(self, topic: Topic) -> list[dict[str, Any]]:
        """Every envelope on one of this test's topics, decoded."""
        assert self.settings.kafka_bootstrap_servers
        name = topic_name(self.settings.topic_prefix, topic)
        servers = self.settings.kafka_bootstrap_servers
        count = asyncio.run(records_in_topic(servers, name))
        records = asyncio.run(read_from_beginning(servers, name, count))
        return [loads_exact(r.value or b"") for r in records]


def body(answer: httpx.Response) -> dict[str, Any]:
    """The envelope, numbers as exact Decimals."""
    decoded: dict[str, Any] = loads_exact(answer.content)
    return decoded


@pytest.fixture
def reference_hub(fresh_settings: Settings) -> Iterator[Hub]:
    with running_reference_hub(fresh_settings) as hub:
        yield hub


@contextmanager
def running_reference_hub(fresh_settings: Settings) -> Iterator[Hub]:
    assert fresh_settings.database_url
    with connect(fresh_settings.database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM Charging")
        reference_store.add_partner(conn, OTH, "CPO", "Other CPO")
        tokens = {
            "C": ocpi_tokens.issue(conn, TNM, ocpi_tokens.TokenKind.C),
            "A": ocpi_tokens.issue(conn, TNM, ocpi_tokens.TokenKind.A),
            "other": ocpi_tokens.issue(conn, OTH, ocpi_tokens.TokenKind.C),
        }
        conn.commit()
    with serve(fresh_settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Hub(fresh_settings, client, tokens)
