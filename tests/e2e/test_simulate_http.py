"""`roamclear simulate --via http` as a user runs it: it starts the hub's API for the run,
connects every simulated partner through the handshake and sends the stream over OCPI; what it
prints matches what the hub counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.workers import worker_env
from settlement.store import books
from settlement.store.db import connect
from tests.e2e.cli import roamclear

pytestmark = pytest.mark.e2e


def test_simulate_over_http_reports_what_the_hub_counted(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    env = worker_env(fresh_settings, tmp_path, "simulate-http")
    refused = roamclear(env, "simulate", "--via", "http", "--rate", "10")
    assert refused.returncode == 2 and "--rate is for --via kafka" in refused.stderr
    done = roamclear(env, "simulate", "--via", "http", "--cdrs", "300", "--seed", "5", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    expected = report["expected"]
    assert report["cdrs_posted"] == expected["received_http"] == 300
    assert report["partners"] == 15 and report["sessions_without_cdr"] > 0
    assert fresh_settings.database_url
    with connect(fresh_settings.database_url) as conn:
        counted = books.ingest_counts(conn)
    assert counted == {
        "received_http": expected["received_http"],
        "accepted_http": expected["accepted_http"],
        "duplicates_http": expected["duplicates_http"],
        "rejected_at_ingest": expected["rejected_at_ingest"],
        "unpublished_http": 0,
    }
    figures = json.loads(roamclear(env, "counts", "--json").stdout)
    assert figures["received_http"] == 300
    sessions = figures["pushes_http"]["sessions"]
    assert sessions == {
        "received": 2 * report["sessions_put"],
        "accepted": 2 * report["sessions_put"],
        "refused": 0,
    }
    assert figures["pushes_http"]["tariffs"]["accepted"] > 0
    listed = roamclear(env, "rejected", "pushes", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    bogus = roamclear(env, "rejected", "pushes", "--module", "cdrs")
    assert bogus.returncode == 2 and "--module must be one of" in bogus.stderr
    again = roamclear(env, "simulate", "--via", "http", "--cdrs", "300", "--seed", "5")
    assert again.returncode == 1 and "partners disconnect" in again.stderr
