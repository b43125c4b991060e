"""Scale-out proof (docs/scaling.md): four `roamclear worker` processes in one consumer group
on a CDR topic of 12 partitions clear a simulated stream with every fault category; one is
killed with SIGKILL and another joins mid-stream; their books are identical (`books diff`'s
comparison) to one clearing of the same records, in-process as a worker clears them."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.simulate.config import Category, ScenarioConfig
from pipeline.simulate.reference import build_reference
from pipeline.simulate.scenario import generate_scenario
from pipeline.simulate.send import register, send_stream
from settlement.books_diff import BooksDiff, diff_books
from settlement.store.books_read import Scope, read_books
from settlement.store.db import connect
from tests.conftest import scratch_database
from tests.e2e.workers import counts, own_servers, wait_for_books, wait_until, workers
from tests.integration.clearing.helpers import clear_in_process, topic_records

pytestmark = pytest.mark.e2e
PARTITIONS = 12  # more than CDR_PARTITIONS, and more than the workers ever running at once
WORKERS = 4
STREAM_CDRS = 3_000
BATCH = 200  # the workers' ROAMCLEAR_CLEARING_BATCH_MAX (tests/e2e/workers.py)


@pytest.fixture
def wide_settings(
    settings: Settings, postgres_server_url: str, template_database: str
) -> Iterator[Settings]:
    """This test's own database, and topics whose CDR-keyed ones have 12 partitions."""
    with own_servers(settings, postgres_server_url, template_database, PARTITIONS) as wide:
        yield wide


def _decided(settings: Settings) -> int:
    found = counts(settings, STREAM_CDRS)
    return found["submitted"] - found["pending"]


def _diff(url_a: str, url_b: str) -> BooksDiff:
    with connect(url_a) as a, connect(url_b) as b:
        return diff_books(read_books(a, Scope.ALL), read_books(b, Scope.ALL))


def test_four_workers_on_12_partitions_with_a_kill_and_a_join_book_what_one_clearing_books(
    wide_settings: Settings, postgres_server_url: str, template_database: str, tmp_path: Path
) -> None:
    settings = wide_settings
    assert settings.database_url
    config = ScenarioConfig(cdrs=STREAM_CDRS, seed=15)
    scenario = generate_scenario(config)
    assert {s.category for s in scenario.submissions} == set(Category)  # every fault
    reference_data = build_reference(config)
    register(settings, reference_data)
    asyncio.run(send_stream(settings, scenario.submissions))
    records = topic_records(settings)
    assert {r.partition for r in records} == set(range(PARTITIONS))

    with workers(settings, tmp_path) as group:
        for _ in range(WORKERS):
            group.start()
        wait_until(
            lambda: 0 < _decided(settings) < STREAM_CDRS // 2, "the workers to be mid-stream", group
        )
        victim = group.processes[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        decided_at_kill = _decided(settings)
        group.start()  # the fifth joins while the group is still rebalancing after the kill
        books = wait_for_books(settings, STREAM_CDRS, group)
        group.check_alive()
    assert victim.returncode == -signal.SIGKILL and 0 < decided_at_kill < STREAM_CDRS

    expected = scenario.expected
    assert books == {
        "submitted": STREAM_CDRS,
        "ledgered": expected.ledgered,
        "rejected": expected.rejected,
        "duplicates": expected.duplicates,
        "pending": 0,
    }
    with scratch_database(postgres_server_url, "roamclear_s1", template_database) as one_url:
        single = replace(settings, database_url=one_url)
        register(single, reference_data)
        outcomes = asyncio.run(clear_in_process(single, records, BATCH))
        found = _diff(settings.database_url, one_url)
    assert outcomes == Counter(
        booked=expected.ledgered, duplicate=expected.duplicates, rejected=expected.rejected
    )
    assert found.identical, found.differences[:5]
    for section in ("transactions", "postings", "balances", "rejections", "outcomes"):
        assert found.rows_a[section] == found.rows_b[section] > 0, section
