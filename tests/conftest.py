"""Session fixtures for real servers: a Kafka broker and a PostgreSQL database.

KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name existing servers; unset, the embedded broker
(Tansu, on a free loopback port) and an embedded PostgreSQL (pgserver, in a temporary
directory) are started for the session and stopped after it. Either way each session gets a
fresh database (created here, dropped after) and topics with a session-unique prefix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from pipeline.config import Settings
from pipeline.embedded.broker import start_broker, stop_broker
from pipeline.embedded.postgres import start_postgres, stop_postgres
from pipeline.kafka.admin import create_topics
from pipeline.topics import topic_specs
from settlement.store.migrate import apply_migrations
from settlement.store.urls import database_name, with_database

CORPUS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "ocpi-cases"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--infra",
        choices=("embedded", "containers"),
        default="embedded",
        help="embedded: Tansu + pgserver (or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL); "
        "containers: Apache Kafka and PostgreSQL from testcontainers (needs Docker)",
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if request.config.getoption("--infra") == "containers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    broker = start_broker(tmp_path_factory.mktemp("broker") / "tansu.log")
    try:
        yield broker.bootstrap_servers
    finally:
        stop_broker(broker.pid)


@pytest.fixture(scope="session")
def postgres_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    if request.config.getoption("--infra") == "containers":
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as postgres:
            yield postgres.get_connection_url()
        return
    # Not under tmp_path_factory: as root the server runs as the user `pgserver`, and every
    # pytest session that starts on this machine makes /tmp/pytest-of-<user> private again;
    # the server then can no longer reach its own files (seen: a PANIC on pg_control).
    directory = Path(tempfile.mkdtemp(prefix="roamclear-test-pg-"))
    pgdata = directory / "pgdata"
    handle = start_postgres(pgdata)
    try:
        yield handle.url
    finally:
        stop_postgres(pgdata)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def scratch_database(
    server_url: str, prefix: str, template: str | None = None, migrate: bool = True
) -> Iterator[str]:
    """A database of its own on the server (copied from `template`, else migrated), dropped
    at exit; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
    url = with_database(server_url, name)
    try:
        if template is None and migrate:
            apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    with scratch_database(postgres_server_url, "roamclear_test") as url:
        yield url


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """A migrated database that `fresh_database_url` copies (CREATE DATABASE … TEMPLATE);
    nothing else connects to it, as a template must have no other sessions."""
    with scratch_database(postgres_server_url, "roamclear_tpl") as url:
        yield database_name(url)


@pytest.fixture
def fresh_database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    """An empty, migrated database of this test's own (counts and balances are exact)."""
    with scratch_database(postgres_server_url, "roamclear_t", template_database) as url:
        yield url


@pytest.fixture
def fresh_topic_prefix(kafka_bootstrap: str) -> str:
    """Topics of this test's own, created up front with their final partition counts."""
    prefix = f"rct{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, topic_specs(prefix))
    return prefix


@pytest.fixture
def fresh_settings(
    settings: Settings, fresh_database_url: str, fresh_topic_prefix: str
) -> Settings:
    """Settings with this test's own database and topics."""
    return replace(settings, database_url=fresh_database_url, topic_prefix=fresh_topic_prefix)


@pytest.fixture(scope="session")
def topic_prefix(kafka_bootstrap: str) -> str:
    """A session-unique prefix, so a shared broker never mixes two sessions' events."""
    prefix = f"rctest{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, topic_specs(prefix))
    return prefix


@pytest.fixture(scope="session")
def settings(
    kafka_bootstrap: str,
    database_url: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings pointing at the session's servers, with short consumer timeouts."""
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        topic_prefix=topic_prefix,
        home=tmp_path_factory.mktemp("home"),
        consumer_session_timeout_s=6.0,
        consumer_heartbeat_interval_s=0.5,
    )


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS_DIR.is_dir():
        pytest.fail(
            f"the OCPI case corpus is not at {CORPUS_DIR}: it ships in ../shared/ocpi-cases "
            "next to the repository (see its README.md for sources and licences)"
        )
    return CORPUS_DIR
