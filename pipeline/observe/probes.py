"""Readiness checks of `roamclear api`'s servers: each returns None when the server is ready,
else why not (one line an operator can act on).

- the database: a pooled connection within the pool's wait, and every packaged migration
  applied (`settlement.store.migrate.unapplied`): an API whose code is newer than its schema
  must not take traffic;
- the broker: some bootstrap server answers a metadata request within `BROKER_WAIT_S_MAX`
  (aiokafka's client bootstrap, the same request a producer starts with).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import psycopg
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from psycopg_pool import ConnectionPool, PoolTimeout

from settlement.store.migrate import unapplied

BROKER_WAIT_S_MAX: Final = 3.0


def database_problem(pool: ConnectionPool[Any]) -> str | None:
    try:
        with pool.connection() as conn:
            missing = unapplied(conn)
    except (PoolTimeout, psycopg.Error, OSError) as exc:
        return f"PostgreSQL out of reach: {type(exc).__name__}: {' '.join(str(exc).split())}"
    if missing:
        return f'migrations not applied: {", ".join(missing)} (docs/observability.md, "Readiness")'
    return None


async def broker_problem(bootstrap_servers: str | None) -> str | None:
    if not bootstrap_servers:
        return "no broker configured (KAFKA_BOOTSTRAP_SERVERS)"
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(BROKER_WAIT_S_MAX * 1000),
        client_id="roamclear-ready",
    )
    try:
        await asyncio.wait_for(client.bootstrap(), BROKER_WAIT_S_MAX)
    except (KafkaError, OSError, TimeoutError) as exc:
        return f"no broker answered at {bootstrap_servers}: {str(exc) or type(exc).__name__}"
    finally:
        await client.close()
    return None
