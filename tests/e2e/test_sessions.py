"""Sessions end to end: a CPO pushes over OCPI to `roamclear api` (uvicorn), a `roamclear
worker` process stores the versions and clears the CDR, and `roamclear sessions` reports the
session whose CDR never came."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.workers import worker_env
from settlement.store.db import connect
from tests.e2e.cli import roamclear
from tests.e2e.workers import wait_until, workers
from tests.integration.clearing.helpers import cdr_dict, envelope, register_reference_data, submit
from tests.integration.ocpi.sessions import period, running_hub, session_doc

pytestmark = pytest.mark.e2e
ENDED = "2026-03-02T10:00:00Z"


def _current(settings: Settings) -> dict[str, Any]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        rows = conn.execute("SELECT session_id, status, versions FROM session").fetchall()
    return {row["session_id"]: (row["status"], row["versions"]) for row in rows}


def _linked(settings: Settings) -> int:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        return int(conn.execute("SELECT count(*) AS n FROM cdr_session").fetchone()["n"])


def test_pushed_sessions_are_stored_and_the_one_without_a_cdr_is_reported(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    with running_hub(settings) as hub, workers(settings, tmp_path) as group:
        group.start()
        assert (
            hub.put(
                "SES-0001", session_doc("SES-0001", start_date_time="2026-03-02T08:00:00Z")
            ).status_code
            == 201
        )
        change = {"status": "ACTIVE", "charging_periods": [period("2026-03-02T08:00:00Z", "5")],
                  "kwh": Decimal("5"), "last_updated": "2026-03-02T09:00:00Z"}  # fmt: skip
        assert hub.patch("SES-0001", change).status_code == 200
        end = {"status": "COMPLETED", "end_date_time": ENDED, "last_updated": ENDED}
        assert hub.patch("SES-0001", end).status_code == 200
        never = session_doc("SES-0099", status="COMPLETED", start_date_time="2026-03-02T08:00:00Z",
                            end_date_time=ENDED, last_updated=ENDED)  # fmt: skip
        assert hub.put("SES-0099", never).status_code == 201
        cdr = cdr_dict(0)  # NL*TNM's CDR for SES-0001
        submit(settings, [(f"NL*TNM*{cdr['id']}".encode(), envelope(cdr))])

        expected = {"SES-0001": ("COMPLETED", 3), "SES-0099": ("COMPLETED", 1)}
        wait_until(lambda: _current(settings) == expected, "the sessions to be stored", group)
        wait_until(lambda: _linked(settings) == 1, "the CDR to be cleared", group)

    env = worker_env(settings, tmp_path / "cli", f"cli-{uuid.uuid4().hex[:6]}")
    done = roamclear(env, "sessions", "missing-cdrs", "--as-of", "2026-03-05T00:00:00", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(f["kind"], f["session"], f["overdue_h"]) for f in report] == [
        ("MISSING_CDR", "NL*TNM*SES-0099", "14.0")
    ]
    shown = roamclear(env, "sessions", "show", "nl*tnm*ses-0001", "--json")
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    assert [v["status"] for v in history["versions"]] == ["PENDING", "ACTIVE", "COMPLETED"]
    assert [(c["cdr_key"], c["outcome"]) for c in history["cdrs"]] == [
        ("NL*TNM*CDR-2026-0001", "LEDGERED")
    ]
    assert [p["method"] for p in history["pushes"]] == ["PUT", "PATCH", "PATCH"]
