"""A fresh migrated database per test: the closer works on the whole ledger, so settlement
tests never share one with each other or with other suites. Copies of a migrated template
(``CREATE DATABASE … TEMPLATE``) keep that to a fraction of a second."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from settlement.store.migrate import apply_migrations
from settlement.store.urls import with_database


def _admin(server_url: str, sql: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def settlement_template(postgres_server_url: str) -> Iterator[str]:
    name = f"roamclear_settle_tpl_{uuid.uuid4().hex[:10]}"
    _admin(postgres_server_url, f'CREATE DATABASE "{name}"')
    apply_migrations(with_database(postgres_server_url, name))
    try:
        yield name
    finally:
        _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settle_db(postgres_server_url: str, settlement_template: str) -> Iterator[str]:
    name = f"roamclear_settle_{uuid.uuid4().hex[:10]}"
    # yoyo may keep a connection to the template open; it is ours alone
    _admin(
        postgres_server_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{settlement_template}' AND pid <> pg_backend_pid()",
    )
    _admin(postgres_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{settlement_template}"')
    try:
        yield with_database(postgres_server_url, name)
    finally:
        _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
