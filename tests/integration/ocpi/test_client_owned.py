"""What every client-owned push shares, against a real PostgreSQL: a body is kept even when
the hub itself fails on it, and nesting beyond the limit never reaches a model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from pipeline.ocpi.auth import Caller
from pipeline.ocpi.client_owned import (
    JSON_DEPTH_MAX,
    Decision,
    Received,
    _decide_and_keep,
    _deeper_than,
)
from pipeline.ocpi.envelope import OcpiStatus
from schemas.hub.party import PartyRef
from settlement.store import ocpi_receipts, reference_store
from settlement.store.db import Row, connect
from settlement.store.ocpi_tokens import TokenKind

pytestmark = pytest.mark.integration
TNM = PartyRef.parse("NL*TNM")


def _received(body: bytes) -> Received:
    return Received(
        caller=Caller(TNM, TokenKind.C, "0" * 64),
        module="tariffs",
        method="PUT",
        path=("NL", "TNM", "AC-1"),
        request_id="req-fault",
        correlation_id="corr-fault",
        body=body,
        truncated=False,
        at=datetime.now(UTC),
    )


def _fails(conn: psycopg.Connection[Row], received: Received, cpo: PartyRef, doc: Any) -> Decision:
    conn.execute("SELECT 1")  # whatever it wrote is rolled back with it
    raise RuntimeError("a bug in a receiver")


def test_a_fault_of_the_hub_is_500_and_the_body_is_still_kept(fresh_database_url: str) -> None:
    with connect(fresh_database_url, autocommit=True) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM")
        decision = _decide_and_keep(conn, _received(b'{"id": "AC-1"}'), _fails)
        assert (decision.http_status, decision.status) == (500, OcpiStatus.SERVER_ERROR)
        (kept,) = ocpi_receipts.receipts(conn, TNM, "req-fault")
    assert bytes(kept["body"]) == b'{"id": "AC-1"}' and kept["status_code"] == 3000


def test_nesting_is_measured_without_recursion() -> None:
    nested: Any = "leaf"
    for _ in range(JSON_DEPTH_MAX):
        nested = [nested]
    assert not _deeper_than(nested, JSON_DEPTH_MAX)
    assert _deeper_than({"a": nested}, JSON_DEPTH_MAX)
    deep: Any = {}
    for _ in range(100_000):  # far beyond Python's recursion limit
        deep = {"x": deep}
    assert _deeper_than(deep, JSON_DEPTH_MAX)
