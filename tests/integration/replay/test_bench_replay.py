"""`roamclear bench replay`'s run: the simulated stream cleared through the worker's batch
into a scratch database, replayed as booked (every record `same`), the figures, and no
scratch database left behind."""

from __future__ import annotations

import psycopg
import pytest

from pipeline.bench import replay as bench

pytestmark = pytest.mark.integration


def _bench_databases(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'roamclear_bench_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_bench_replay_replays_every_record_as_booked(postgres_server_url: str) -> None:
    before = _bench_databases(postgres_server_url)
    stages: list[str] = []
    result = bench.run(postgres_server_url, 300, lambda stage, _: stages.append(stage))
    assert result.cdrs == 300 and result.same == 300  # duplicates, rejections, credits too
    assert result.per_s > 0 and result.cpu_per_s > 0 and result.live_per_s > 0
    assert stages[0] == "loaded" and stages.count("replayed") >= 1
    assert _bench_databases(postgres_server_url) == before
