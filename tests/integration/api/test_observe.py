"""`roamclear api`'s /health, /ready and /metrics over real HTTP, against the real broker and
PostgreSQL: metrics parsed with prometheus_client's own text parser; readiness that falls
when a migration is missing and when PostgreSQL is out of reach."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Settings
from schemas.hub.party import PartyRef
from settlement.batches.model import ClosePolicy
from settlement.store import ocpi_tokens
from settlement.store.closing import close_once
from settlement.store.db import connect
from tests.integration.clearing.helpers import register_reference_data
from tests.integration.settlement.factories import SEAL_KEY, at, book
from tests.integration.settlement.http import free_port, serve

pytestmark = pytest.mark.integration
POLICY = ClosePolicy(time_zone="UTC", grace=timedelta(hours=1))


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics scrape: (name, sorted labels) -> value."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _rejections(samples: dict[Any, float], reason: str) -> float:
    return samples.get(("roamclear_ingest_rejections_total", (("reason", reason),)), 0.0)


def test_health_ready_and_metrics_of_a_working_api(fresh_settings: Settings) -> None:
    assert fresh_settings.database_url
    register_reference_data(fresh_settings)
    with connect(fresh_settings.database_url) as conn:
        token = ocpi_tokens.issue(conn, PartyRef.parse("NL*TNM"), ocpi_tokens.TokenKind.C)
        book(conn, "NL*TNM", "DE*EMS", "10.0000", "0.1500")
        book(conn, "DE*EMS", "NL*TNM", "3.3333", "0.0500")
        conn.commit()
    report = close_once(fresh_settings.database_url, at("2025-06-02 00:00"), POLICY, SEAL_KEY)
    assert len(report.batches) == 2
    auth = {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}
    with serve(fresh_settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/health").json() == {"status": "up"}
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"ready": True, "checks": {"database": "ok", "broker": "ok"}}

        before = _samples(client)
        refused = client.post("/ocpi/2.2.1/cdrs", content=b"{not json", headers=auth)
        assert refused.status_code == 400
        after = _samples(client)
        assert _rejections(after, "malformed_json") == _rejections(before, "malformed_json") + 1
        assert after[("roamclear_database_up", ())] == 1
        for state in ("PULL", "PENDING", "RETRYING", "DELIVERED", "DEAD"):
            assert after[("roamclear_deliveries", (("state", state),))] == 0
        assert after[("roamclear_closer_recorded_runs_total", (("state", "CLOSED"),))] == 1
        assert after[("roamclear_closer_recorded_runs_total", (("state", "FAILED"),))] == 0
        assert after[("roamclear_statements_total", ())] == 2
        last_closed = after[("roamclear_closer_last_run_timestamp_seconds", (("state", "CLOSED"),))]
        assert last_closed > at("2025-06-02 00:00").timestamp()
        assert ("process_cpu_seconds_total", ()) in after  # the process's own metrics

        # the schema behind the code: one packaged migration not applied
        with connect(fresh_settings.database_url) as conn:
            conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = '0017_hub_client_info'")
            conn.commit()
        lagging = client.get("/ready")
        assert lagging.status_code == 503
        checks = lagging.json()["checks"]
        assert checks["broker"] == "ok"
        assert checks["database"].startswith("migrations not applied: 0017_hub_client_info")


def test_ready_falls_and_metrics_still_answer_without_postgresql(settings: Settings) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/roamclear"
    served = replace(settings, database_url=unreachable)
    with serve(served) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False and body["checks"]["broker"] == "ok"
        assert body["checks"]["database"].startswith("PostgreSQL out of reach")
        samples = _samples(client)
    assert samples[("roamclear_database_up", ())] == 0
    assert not any(name == "roamclear_deliveries" for name, _ in samples)
