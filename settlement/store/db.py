"""Connections to PostgreSQL (psycopg 3). Nothing connects at import time.

jsonb values come back with every non-integer number as an exact `Decimal` (never a float),
and are written with `jsonb_exact(...)`, which keeps the digits we computed.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads

from schemas.base import loads_exact
from schemas.wire import encode_json

Row = dict[str, Any]


def connect(database_url: str, autocommit: bool = False) -> psycopg.Connection[Row]:
    connection = psycopg.connect(database_url, autocommit=autocommit, row_factory=dict_row)
    set_json_loads(loads_exact, connection)
    return connection


async def connect_async(
    database_url: str, autocommit: bool = False
) -> psycopg.AsyncConnection[Row]:
    connection = await psycopg.AsyncConnection.connect(
        database_url, autocommit=autocommit, row_factory=dict_row
    )
    set_json_loads(loads_exact, connection)
    return connection


def jsonb_exact(value: object) -> Jsonb:
    """A jsonb parameter whose Decimals are written as exact JSON numbers."""
    return Jsonb(value, dumps=encode_json)
