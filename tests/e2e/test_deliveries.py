"""`roamclear deliver` processes against a clearing worker and fake eMSPs that are real HTTP
servers: a stream reaches every eMSP, a kill -9 of the deliverer mid-stream loses nothing, and
what it sends twice (a POST cut short by the kill) is the same CDR, byte for byte; a dead
eMSP holds nobody else up."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Settings
from pipeline.workers import DELIVER_COMMAND
from schemas.hub.party import PartyRef
from settlement.store import deliveries
from settlement.store.db import connect
from tests.e2e.test_worker import stream_of_cdrs
from tests.e2e.workers import wait_for_books, wait_until, workers
from tests.integration.clearing.helpers import register_reference_data, submit
from tests.integration.delivery.emsp import FakeEmsp, connect_emsp
from tests.integration.settlement.http import free_port

pytestmark = pytest.mark.e2e
STREAM_CDRS = 900  # cdr_dict(n % 3): DE*EMP's are n % 3 in (0, 2), BE*EVB's n % 3 == 1
EMP_CDRS = 600
FAST_RETRIES = {
    "ROAMCLEAR_DELIVERY_BACKOFF_BASE_S": "0.2",
    "ROAMCLEAR_DELIVERY_BACKOFF_CAP_S": "1",
    "ROAMCLEAR_DELIVERY_ATTEMPTS_MAX": "1000",
    "ROAMCLEAR_DELIVERY_TIMEOUT_S": "2",
    "ROAMCLEAR_DELIVERY_LEASE_S": "8",
}


def _state_counts(settings: Settings, emsp: str) -> dict[str, int]:
    assert settings.database_url is not None
    with connect(settings.database_url) as conn:
        return deliveries.counts(conn, emsp)


def _attempts(exposition: str) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "roamclear_delivery_attempts"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_kill_9_of_the_deliverer_loses_nothing_and_a_dead_emsp_holds_nobody_up(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    register_reference_data(fresh_settings)
    emp = FakeEmsp(token="emp-token")
    with emp.serving() as url:
        connect_emsp(fresh_settings, PartyRef.parse("DE*EMP"), url, emp.token)
        connect_emsp(
            fresh_settings, PartyRef.parse("BE*EVB"), f"http://127.0.0.1:{free_port()}", "evb"
        )
        submit(fresh_settings, stream_of_cdrs(STREAM_CDRS))
        port = free_port()  # each deliverer in turn serves its metrics there (Settings)
        with (
            workers(fresh_settings, tmp_path) as clearing,
            workers(
                fresh_settings,
                tmp_path,
                DELIVER_COMMAND,
                "deliver",
                ROAMCLEAR_METRICS_PORT=str(port),
                **FAST_RETRIES,
            ) as deliverers,
        ):
            clearing.start()
            first = deliverers.start()
            wait_until(
                lambda: 0 < len(emp.ok()) < EMP_CDRS // 2,
                "the deliverer to be mid-stream",
                deliverers,
            )
            first.send_signal(signal.SIGKILL)
            first.wait()
            deliverers.start()
            wait_for_books(fresh_settings, STREAM_CDRS, clearing)
            wait_until(
                lambda: _state_counts(fresh_settings, "DE*EMP")["DELIVERED"] == EMP_CDRS,
                "every DE*EMP CDR to be delivered",
                deliverers,
            )
            evb = _state_counts(fresh_settings, "BE*EVB")
            ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
            attempts = _attempts(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    # the second deliverer's own count: the rest of DE*EMP's delivered (BE*EVB's, OFFLINE
    # once its versions endpoint fails the still-alive check, wait without attempts)
    assert ready.status_code == 200 and ready.json()["partitions"] > 0
    assert 0 < attempts["delivered"] <= EMP_CDRS
    assert set(attempts) <= {"delivered", "retrying", "dead"}
    # every CDR reached DE*EMP while BE*EVB's endpoint was dead throughout
    received = Counter(r.cdr["id"] for r in emp.received)
    expected = {f"CDR-S-{n:06d}" for n in range(STREAM_CDRS) if n % 3 != 1}
    assert set(received) == expected
    assert evb["DELIVERED"] == 0 and evb["RETRYING"] + evb["PENDING"] == STREAM_CDRS - EMP_CDRS
    # what came twice came the same: same id, same bytes (an eMSP answers it as a duplicate),
    # and only for POSTs the kill cut short
    twice = {cdr_id for cdr_id, n in received.items() if n > 1}
    for cdr_id in twice:
        assert len({r.body for r in emp.received if r.cdr["id"] == cdr_id}) == 1
    assert fresh_settings.database_url is not None
    with connect(fresh_settings.database_url) as conn:
        cut_short = conn.execute(
            "SELECT count(*) AS n FROM cdr_delivery_attempt WHERE finished_at IS NULL"
        ).fetchone()
    assert cut_short is not None
    assert sum(received.values()) - len(received) <= cut_short["n"]
