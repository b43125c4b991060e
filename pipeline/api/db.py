"""The API's PostgreSQL connection, per request, from the app's pool (pipeline.api.app).

    def handler(conn: Conn) -> …: conn.execute(…)

The pool connects as `roamclear_api` (pipeline.dbroles) in autocommit mode: a handler that
writes more than one row opens `conn.transaction()` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from settlement.store.db import Row


def _connection(request: Request) -> Iterator[psycopg.Connection[Row]]:
    pool: ConnectionPool[psycopg.Connection[Row]] = request.app.state.finance_pool
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection[Row], Depends(_connection)]
