"""`roamclear worker` processes against the real broker and PostgreSQL: exact books through
a mixed batch, a kill -9 mid-stream, a second worker joining mid-stream, and a group of two."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from pipeline.api.serving import free_port
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import hub_key_env
from pipeline.topics import CDR_PARTITIONS, Topic, topic_name
from settlement.store.db import connect
from tests.e2e.workers import (
    balances,
    counts,
    log_text,
    own_servers,
    wait_for_books,
    wait_until,
    workers,
)
from tests.integration.clearing import batches as raw
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    mixed_batch,
    register_reference_data,
    submit,
)

pytestmark = pytest.mark.e2e
STREAM_CDRS = 4_000
DB_PASSWORD = "worker-Pa55-must-not-be-logged"


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    outcomes: dict[str, float]
    reasons: dict[str, float]
    batch_records_sum: float
    commits: float
    assigned: float
    lags: dict[tuple[str, str], float]  # (topic, partition) -> records


def _scrape(port: int) -> WorkerMetrics:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def by(name: str, label: str) -> dict[str, float]:
        return {s.labels[label]: s.value for s in samples if s.name == name}

    def one(name: str) -> float:
        return next(s.value for s in samples if s.name == name)

    return WorkerMetrics(
        outcomes=by("roamclear_clearing_cdrs_total", "outcome"),
        reasons=by("roamclear_clearing_rejections_total", "reason"),
        batch_records_sum=one("roamclear_clearing_batch_records_sum"),
        commits=one("roamclear_clearing_commit_duration_seconds_count"),
        assigned=one("roamclear_consumer_assigned_partitions"),
        lags={
            (s.labels["topic"], s.labels["partition"]): s.value
            for s in samples
            if s.name == "roamclear_consumer_lag_records"
        },
    )


def wait_for_metrics(port: int, cleared: int, group: Any) -> WorkerMetrics:
    """The worker's metrics once they count `cleared` events and no lag."""
    found: list[WorkerMetrics] = []

    def settled() -> bool:
        found[:] = [_scrape(port)]
        lags = found[0].lags.values()
        return sum(found[0].outcomes.values()) == cleared and bool(lags) and not any(lags)

    wait_until(settled, "the worker's metrics to count every event", group, timeout_s=30)
    return found[0]


def _assert_json_log_without(log_dir: Path, secrets: tuple[str, ...]) -> None:
    text = log_text(log_dir)
    for secret in secrets:
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every one
    started = [x for x in lines if x["message"].startswith("clearing agent started")]
    assert started and f"{DbRole.WORKER.value}:***@" in started[0]["message"]
    batch = next(x for x in lines if x["message"].startswith("batch "))
    assert batch["logger"] == "roamclear.clearing" and batch["level"] == "INFO"
    assert {"timestamp", "topic", "partition", "offset"} <= set(batch)


def stream_of_cdrs(count: int) -> list[tuple[bytes, bytes]]:
    """`count` distinct valid CDRs (the three samples with new ids)."""
    records = []
    for n in range(count):
        data = cdr_dict(n % 3, id=f"CDR-S-{n:06d}")
        records.append((f"NL*TNM*CDR-S-{n:06d}".encode(), envelope(data)))
    return records


def test_a_worker_books_a_mixed_batch_exactly(fresh_settings: Settings, tmp_path: Path) -> None:
    """... and reports it: its /metrics, /health and /ready (docs/observability.md), and its
    log in JSON lines without the secrets it was given."""
    register_reference_data(fresh_settings)
    raw, expected = mixed_batch()
    submit(fresh_settings, raw)
    port = free_port()
    # a password for the worker's role (trust authentication ignores it) and the hub key
    worker_url = role_url(fresh_settings, DbRole.WORKER).replace(
        f"{DbRole.WORKER.value}@", f"{DbRole.WORKER.value}:{DB_PASSWORD}@", 1
    )
    secrets = (DB_PASSWORD, hub_key_env(fresh_settings)["ROAMCLEAR_HUB_KEY"])
    observed = {
        "ROAMCLEAR_METRICS_PORT": str(port),
        "ROAMCLEAR_LOG_FORMAT": "json",
        "ROAMCLEAR_DATABASE_URL_WORKER": worker_url,
    }
    with workers(fresh_settings, tmp_path, **observed) as group:
        group.start()
        books = wait_for_books(fresh_settings, len(raw), group)
        metrics = wait_for_metrics(port, len(raw), group)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/health").json() == {"status": "up"}
            ready = client.get("/ready")
            assert ready.status_code == 200 and ready.json()["ready"] is True
    assert metrics.outcomes == {
        "booked": expected.ledgered,
        "rejected": sum(expected.rejected.values()),
        "duplicate": expected.duplicates,
    }
    assert metrics.reasons == expected.rejected
    assert metrics.batch_records_sum == len(raw) and metrics.commits >= 1
    assert metrics.assigned > 0 and metrics.lags and set(metrics.lags.values()) == {0}
    _assert_json_log_without(tmp_path, secrets)
    assert books == {
        "submitted": len(raw),
        "ledgered": expected.ledgered,
        "rejected": sum(expected.rejected.values()),
        "duplicates": expected.duplicates,
        "pending": 0,
    }
    assert sum(balances(fresh_settings).values()) == 0  # type: ignore[arg-type]
    assert "clearing agent started on uvloop" in log_text(tmp_path)


def test_kill_9_mid_stream_loses_nothing_and_books_nothing_twice(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    register_reference_data(fresh_settings)
    submit(fresh_settings, stream_of_cdrs(STREAM_CDRS))
    with workers(fresh_settings, tmp_path) as group:
        first = group.start()
        wait_until(
            lambda: 0 < counts(fresh_settings, STREAM_CDRS)["ledgered"] < STREAM_CDRS // 2,
            "the first worker to be mid-stream",
            group,
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = counts(fresh_settings, STREAM_CDRS)["ledgered"]
        group.start()
        books = wait_for_books(fresh_settings, STREAM_CDRS, group)
    assert 0 < killed_at < STREAM_CDRS
    assert books == {
        "submitted": STREAM_CDRS,
        "ledgered": STREAM_CDRS,
        "rejected": 0,
        "duplicates": 0,
        "pending": 0,
    }
    assert "replayed" in log_text(tmp_path)


def test_a_second_worker_joining_mid_stream_keeps_the_books_exact(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    register_reference_data(fresh_settings)
    submit(fresh_settings, stream_of_cdrs(STREAM_CDRS))
    with workers(fresh_settings, tmp_path) as group:
        group.start()
        wait_until(
            lambda: counts(fresh_settings, STREAM_CDRS)["ledgered"] > 0, "the first bookings", group
        )
        group.start()  # the group rebalances while the first worker is mid-stream
        books = wait_for_books(fresh_settings, STREAM_CDRS, group)
    assert books["ledgered"] == STREAM_CDRS and books["duplicates"] == books["rejected"] == 0


def test_two_workers_book_exactly_what_one_worker_books(
    fresh_settings: Settings, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    raw = stream_of_cdrs(1_000)
    raw += mixed_batch()[0]
    # one worker, on this test's own database and topics
    register_reference_data(fresh_settings)
    submit(fresh_settings, raw)
    with workers(fresh_settings, tmp_path / "one") as group:
        (tmp_path / "one").mkdir()
        group.start()
        single = wait_for_books(fresh_settings, len(raw), group)
    single_balances = balances(fresh_settings)
    # two workers in one group, on a second database and topic set
    other = request.getfixturevalue("second_settings")
    register_reference_data(other)
    submit(other, raw)
    (tmp_path / "two").mkdir()
    with workers(other, tmp_path / "two") as group:
        group.start()
        group.start()
        double = wait_for_books(other, len(raw), group)
    assert double == single
    assert balances(other) == single_balances
    assert settings.database_url != other.database_url


@pytest.fixture
def second_settings(
    settings: Settings, postgres_server_url: str, template_database: str
) -> Iterator[Settings]:
    """A second database and topic set, for comparing two runs of the same input."""
    with own_servers(settings, postgres_server_url, template_database) as other:
        yield other


def test_a_worker_that_loses_postgresql_stops_and_a_new_one_books_the_rest(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    """A batch that cannot commit is never acked: the worker exits (for its supervisor to
    restart it) instead of carrying on past the batch, and the next worker books it. The
    second half is one small batch on an otherwise quiet topic, so nothing but the failure
    itself can stop the worker."""
    assert fresh_settings.database_url
    register_reference_data(fresh_settings)
    first_half = stream_of_cdrs(400)
    second_half = [
        (f"NL*TNM*CDR-T-{n:06d}".encode(), envelope(cdr_dict(n % 3, id=f"CDR-T-{n:06d}")))
        for n in range(50)
    ]
    submit(fresh_settings, first_half)
    with workers(fresh_settings, tmp_path) as group:
        first = group.start()
        wait_for_books(fresh_settings, 400, group)
        with connect(fresh_settings.database_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        submit(fresh_settings, second_half)
        try:
            code = first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the worker kept running without its database") from None
        assert code != 0
        assert "We experienced a crash" in log_text(tmp_path)
        group.expected_exits.add(first.pid)
        group.start()
        books = wait_for_books(fresh_settings, 450, group)
    assert books["ledgered"] == 450 and books["duplicates"] == books["rejected"] == 0


def test_a_record_the_client_cannot_read_is_rejected_and_clearing_goes_on(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    """One record whose header name is not UTF-8 (aiokafka raised on it inside `getmany`,
    so the worker died on it at every restart) and 20 valid CDRs behind it on the same
    partition: 20 booked, 1 rejected as unreadable_record, and the worker stays up."""
    assert fresh_settings.database_url and fresh_settings.kafka_bootstrap_servers
    register_reference_data(fresh_settings)
    topic = topic_name(fresh_settings.topic_prefix, Topic.CDR_SUBMITTED)
    key = b"NL*TNM*K"  # one key: the valid CDRs land behind the bad record
    partition = DefaultPartitioner()(key, list(range(CDR_PARTITIONS)), [])
    bad = raw.batch([raw.record(0, key, envelope(cdr_dict(0)), [(b"\xc0\xaf", b"1")])])
    servers = fresh_settings.kafka_bootstrap_servers
    assert asyncio.run(raw.produce_raw(servers, topic, partition, bad)) == 0
    valid = [(key, envelope(cdr_dict(n % 3, id=f"CDR-U-{n:06d}"))) for n in range(20)]
    submit(fresh_settings, valid)
    with workers(fresh_settings, tmp_path) as group:
        group.start()
        books = wait_for_books(fresh_settings, 21, group)
        group.check_alive()
    assert books == {
        "submitted": 21,
        "ledgered": 20,
        "rejected": 1,
        "duplicates": 0,
        "pending": 0,
    }
    with connect(fresh_settings.database_url) as conn:
        [rejection] = conn.execute(
            'SELECT e.partition, e."offset", j.reason_code FROM rejection j '
            "JOIN raw_event e USING (archive_id)"
        ).fetchall()
    assert rejection == {"partition": partition, "offset": 0, "reason_code": "unreadable_record"}
