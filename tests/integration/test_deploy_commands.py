"""The one-shot commands a deployment runs before its services (deploy/): `roamclear migrate`
brings an empty database up to date as the administrator, `migrate --check` tells a reader
what is pending, and `topics create --replication-factor` makes every topic."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.dbroles import DbRole
from pipeline.topics import topic_specs
from settlement.store.urls import with_user
from tests.conftest import scratch_database

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, list[str]]]:
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_migrate_applies_what_check_lists_then_nothing_is_pending(
    postgres_server_url: str, kafka_bootstrap: str
) -> None:
    with scratch_database(postgres_server_url, "roamclear_deploy", migrate=False) as url:
        admin = {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
        code, before = _run(["migrate", "--check", "--json"], admin)
        assert code == 1 and "0001_foundation" in before["pending"]
        code, applied = _run(["migrate", "--json"], admin)
        assert code == 0 and applied["applied"] == before["pending"]
        reader = {**admin, "DATABASE_URL": with_user(url, DbRole.READER.value)}
        assert _run(["migrate", "--check", "--json"], reader) == (0, {"pending": []})
        assert _run(["migrate", "--json"], admin) == (0, {"applied": []})


def test_migrate_without_a_database_url_says_so() -> None:
    result = CliRunner().invoke(app, ["migrate"], env={"DATABASE_URL": ""})
    assert result.exit_code == 2
    assert "DATABASE_URL is not set" in result.output


def test_topics_create_makes_every_topic_once(kafka_bootstrap: str, database_url: str) -> None:
    prefix = f"rcdeploy{uuid.uuid4().hex[:8]}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "ROAMCLEAR_TOPIC_PREFIX": prefix,
    }
    args = ["topics", "create", "--replication-factor", "1", "--json"]
    code, created = _run(args, env)
    assert code == 0
    assert sorted(created["created"]) == sorted(spec.name for spec in topic_specs(prefix))
    assert _run(args, env) == (0, {"created": []})
