"""`roamclear tariffs publish` stores through the path the OCPI receiver uses: the same
refusal of a changed tariff under a stored last_updated, nothing published then."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.hubkeys import hub_key_env
from schemas.wire import encode_json
from settlement.store.db import connect
from tests.e2e.cli import roamclear
from tests.integration.clearing.helpers import register_reference_data, sample

pytestmark = pytest.mark.e2e


def test_a_changed_tariff_under_a_stored_last_updated_is_refused(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings
    assert settings.kafka_bootstrap_servers and settings.database_url
    register_reference_data(settings)  # AC-STANDARD, last_updated 2026-01-01
    env = {
        **os.environ,
        **hub_key_env(settings),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
        "ROAMCLEAR_HOME": str(settings.home),
    }
    changed = {**sample("tariff_nl_tnm_ac.json"), "currency": "GBP"}
    newer = {**changed, "last_updated": "2026-02-01T00:00:00Z"}
    (tmp_path / "changed.json").write_text(encode_json([newer, changed]))

    refused = roamclear(env, "tariffs", "publish", str(tmp_path / "changed.json"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "nothing published" in refused.stderr and "new last_updated" in refused.stderr
    with connect(settings.database_url) as conn:
        rows = conn.execute("SELECT body FROM tariff_version").fetchall()
    assert [r["body"]["currency"] for r in rows] == ["EUR"]  # the newer one was not kept
