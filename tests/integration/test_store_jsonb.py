"""A CDR survives PostgreSQL jsonb with every Decimal digit intact."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from schemas.base import loads_exact
from schemas.ocpi.cdr import Cdr
from schemas.wire import encode_json
from settlement.store.db import connect, jsonb_exact

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "pipeline" / "samples"


def test_cdr_round_trips_through_jsonb_exactly(database_url: str) -> None:
    raw = (SAMPLES / "cdrs_nl_tnm.json").read_bytes()
    cdrs = [Cdr.model_validate(item) for item in loads_exact(raw)]
    with connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE cdr_doc (id int PRIMARY KEY, body jsonb NOT NULL)")
        for index, cdr in enumerate(cdrs):
            body = cdr.model_dump(mode="python", exclude_none=True)
            conn.execute("INSERT INTO cdr_doc VALUES (%s, %s)", (index, jsonb_exact(body)))
        rows = conn.execute("SELECT body FROM cdr_doc ORDER BY id").fetchall()
        # PostgreSQL itself sees exact numerics, not rounded floats
        volume = conn.execute(
            "SELECT (body->'charging_periods'->0->'dimensions'->0->>'volume')::numeric AS v "
            "FROM cdr_doc WHERE id = 2"
        ).fetchone()
    assert volume is not None and volume["v"] == Decimal("7.842")
    back = [Cdr.model_validate(row["body"]) for row in rows]
    assert back == cdrs
    assert back[1].total_cost.incl_vat == Decimal("14.2478")
    assert isinstance(rows[0]["body"]["total_cost"]["excl_vat"], Decimal)
    assert encode_json(back[0].model_dump(exclude_none=True)) == encode_json(
        cdrs[0].model_dump(exclude_none=True)
    )
