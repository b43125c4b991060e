"""The closer's and the deliverer's /health, /ready and /metrics (pipeline.observe), and the
deliverer's attempts counted by outcome. The closer's endpoint is served for real on a free
port; the deliverer's is the worker's endpoint with its own registry and readiness, asked
through a fake of the consumer calls it makes (as test_consumer_lag)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest
from faust.types import TP

from pipeline.cli.common import metrics_address
from pipeline.config import Settings
from pipeline.delivery.dispatcher import DispatchPolicy
from pipeline.observe.closer_http import CloserHealth, serve_closer
from pipeline.observe.deliveries import ObservedDispatcher
from pipeline.observe.metrics import DELIVERER, observe_close
from pipeline.observe.worker_http import WorkerEndpoint, assigned_readiness
from settlement.delivery.answer import Verdict, failed
from settlement.delivery.retry import RetryPolicy
from settlement.store.deliveries import Claimed


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_closer_is_ready_after_a_close_and_unready_after_a_failed_one() -> None:
    health = CloserHealth()
    server = serve_closer("127.0.0.1", 0, health)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert _get(f"{base}/health") == (200, b'{"status": "up"}')
        status, body = _get(f"{base}/ready")
        assert (status, json.loads(body)["reason"]) == (503, "no close finished yet")
        observe_close("closed", 0.5, 2)
        health.closed(2)
        status, body = _get(f"{base}/ready")
        assert (status, json.loads(body)) == (
            200,
            {"ready": True, "reason": "last close: 2 batches closed"},
        )
        health.failed("OperationalError")
        status, body = _get(f"{base}/ready")
        assert (status, json.loads(body)["reason"]) == (503, "last close failed: OperationalError")
        status, body = _get(f"{base}/metrics")
        assert status == 200 and b'roamclear_closer_runs_total{result="closed"}' in body
        assert _get(f"{base}/nothing")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def _claimed(failed_in_a_row: int) -> Claimed:
    return Claimed(
        1, "tx-1", "CHARGE", "NL*TNM*1", "NL*TNM", "DE*EMS", 1, failed_in_a_row, "c", b"{}", "r"
    )


def _attempts(outcome: str) -> float:
    value = DELIVERER.get_sample_value("roamclear_delivery_attempts_total", {"outcome": outcome})
    return value or 0.0


def test_the_dispatcher_counts_each_answer_by_what_follows() -> None:
    retry = RetryPolicy(base_s=1.0, factor=2.0, cap_s=10.0, attempts_max=3)
    policy = DispatchPolicy(retry=retry, concurrency=1, timeout_s=1.0, lease_s=10.0)
    dispatcher = ObservedDispatcher("postgresql://unused", cast(Any, None), policy, cast(Any, None))
    before = {outcome: _attempts(outcome) for outcome in ("delivered", "retrying", "dead")}
    delivered = Verdict(True, 200, 1000, None)
    states = [
        dispatcher._answered(_claimed(0), delivered, "https://emsp/cdrs/1").next_state,
        dispatcher._answered(_claimed(0), failed("timeout"), None).next_state,
        dispatcher._answered(_claimed(1), failed("refused", 503), None).next_state,
        dispatcher._answered(_claimed(2), failed("timeout"), None).next_state,  # the third
    ]
    assert [s.value for s in states] == ["DELIVERED", "RETRYING", "RETRYING", "DEAD"]
    after = {outcome: _attempts(outcome) - count for outcome, count in before.items()}
    assert after == {"delivered": 1, "retrying": 2, "dead": 1}


@dataclass
class _Consumer:
    assigned: set[TP]

    def assignment(self) -> set[TP]:
        return self.assigned

    def highwater(self, tp: TP) -> int | None:
        return 10

    async def position(self, tp: TP) -> int | None:
        return 7


@dataclass
class _App:
    consumer: _Consumer


def test_the_deliverer_is_ready_with_partitions_and_exports_its_own_registry() -> None:
    app = _App(_Consumer(set()))
    endpoint = WorkerEndpoint(
        cast(Any, app), "127.0.0.1", 0, registry=DELIVERER, ready_of=assigned_readiness
    )

    async def ask() -> tuple[int, Any, bytes]:
        ready = await endpoint._ready(cast(Any, None))
        metrics = await endpoint._metrics(cast(Any, None))
        assert isinstance(ready.body, bytes) and isinstance(metrics.body, bytes)
        return ready.status, json.loads(ready.body), metrics.body

    status, body, _ = asyncio.run(ask())
    assert (status, body["reason"]) == (503, "no partitions assigned")
    app.consumer.assigned = {TP("roamclear.cdr.rated", 0), TP("roamclear.cdr.rated", 1)}
    status, body, metrics = asyncio.run(ask())
    assert (status, body["reason"]) == (200, "2 partitions assigned, 6 records behind")
    assert b"roamclear_delivery_attempts_total" in metrics
    assert b"roamclear_clearing_cdrs_total" not in metrics  # the worker's, not served here
    assert b'roamclear_consumer_lag_records{partition="1",topic="roamclear.cdr.rated"} 3.0' in (
        metrics
    )


def test_the_metrics_port_comes_from_the_option_else_the_settings() -> None:
    off = Settings.from_env({})
    assert metrics_address(off, None, None) is None
    assert metrics_address(off, 9100, None) == ("127.0.0.1", 9100)
    on = Settings.from_env({"ROAMCLEAR_METRICS_PORT": "9090", "ROAMCLEAR_METRICS_HOST": "0.0.0.0"})
    assert metrics_address(on, None, None) == ("0.0.0.0", 9090)
    assert metrics_address(on, 9200, "127.0.0.1") == ("127.0.0.1", 9200)


def test_settings_read_the_settlement_and_process_variables_and_name_a_bad_one() -> None:
    settings = Settings.from_env(
        {
            "ROAMCLEAR_SETTLEMENT_TZ": "Europe/Amsterdam",
            "ROAMCLEAR_SETTLEMENT_GRACE": "30m",
            "ROAMCLEAR_EVENT_LOOP": "asyncio",
        }
    )
    assert settings.settlement_time_zone == "Europe/Amsterdam"
    assert settings.settlement_grace == timedelta(minutes=30)
    assert settings.event_loop == "asyncio"
    defaults = Settings.from_env({})
    assert (defaults.settlement_time_zone, defaults.event_loop) == ("UTC", "uvloop")
    assert defaults.settlement_grace == timedelta(hours=1)
    for variable, value in [
        ("ROAMCLEAR_SETTLEMENT_TZ", "Mars/Olympus"),
        ("ROAMCLEAR_SETTLEMENT_GRACE", "soon"),
        ("ROAMCLEAR_EVENT_LOOP", "trio"),
        ("ROAMCLEAR_METRICS_PORT", "70000"),
    ]:
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})
