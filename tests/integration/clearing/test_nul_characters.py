"""U+0000 from a partner: PostgreSQL's text and jsonb refuse it, so before the fix one such
record failed its whole batch on every redelivery and stopped clearing for everyone."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from pipeline.config import Settings
from settlement.store import books
from settlement.store.db import connect
from tests.integration.clearing.helpers import cdr_dict, envelope, register_reference_data, submit
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration


def test_nul_characters_are_rejected_and_stored_without_stopping_the_batch(
    fresh_settings: Settings,
) -> None:
    assert fresh_settings.database_url
    register_reference_data(fresh_settings)
    location = {**cdr_dict(2)["cdr_location"], "name": "hall\u0000east"}
    raw = [
        (b"k0", b'{"event_id": "1\x00", "cdr": {'),  # not JSON, with a raw NUL byte
        (b"k1", envelope(cdr_dict(1, id="CDR-NUL\u0000"))),  # escaped NUL in the key
        (b"k2", envelope(cdr_dict(2, cdr_location=location))),
        (b"k3", envelope(cdr_dict(2))),  # a valid CDR in the same batch
    ]
    result = asyncio.run(_clear(fresh_settings, submit(fresh_settings, raw)))
    assert result.outcomes == Counter({"rejected": 3, "booked": 1})

    with connect(fresh_settings.database_url) as conn:
        rows = {r["reason_code"] + ":" + (r["cdr_key"] or ""): r for r in books.rejections(conn)}
        stored = conn.execute(
            "SELECT payload FROM rejection WHERE reason_code = 'malformed_json'"
        ).fetchone()
    assert set(rows) == {
        "malformed_json:",
        "schema_invalid:NL*TNM*CDR-NUL\ufffd",
        "schema_invalid:NL*TNM*CDR-2026-0003",
    }
    assert stored is not None and stored["payload"] == '{"event_id": "1\ufffd", "cdr": {'
    violations = rows["schema_invalid:NL*TNM*CDR-2026-0003"]["violations"]
    assert [(v["path"], v["code"]) for v in violations] == [("cdr.cdr_location.name", "nul")]
