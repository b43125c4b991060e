"""Migration 0015 gives tariff versions stored under the old hash (sha256 of the OCPI JSON)
the hash bookings record; the table stays append-only and a re-publish stays idempotent."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import psycopg
import pytest

from schemas.base import loads_exact
from schemas.ocpi.tariff import Tariff
from schemas.validation import parse_tariff
from schemas.wire import to_ocpi_json
from settlement.rating.compile import tariff_content_hash
from settlement.store import reference_store
from settlement.store.db import connect
from settlement.store.migrate import apply_migrations
from settlement.store.tariff_rehash import TariffHashCollision
from tests.conftest import scratch_database
from tests.integration.settlement.test_seal_db import _migrate_until

pytestmark = pytest.mark.integration

_INSERT = """
INSERT INTO tariff_version (tariff_key, cpo, tariff_id, last_updated, content_hash, currency,
                            valid_from, valid_to, body)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_BEFORE = "0014_ocpi_reference"


def _old_hash(tariff: Tariff) -> str:
    """How `tariff_version.content_hash` was computed before migration 0015."""
    return hashlib.sha256(to_ocpi_json(tariff)).hexdigest()


def _stored_before_0015(conn: psycopg.Connection[Any], tariff: Tariff) -> None:
    row = list(reference_store.tariff_row(tariff))
    row[4] = _old_hash(tariff)
    conn.execute(_INSERT, row)


def _sample() -> Tariff:
    text = resources.files("pipeline.samples").joinpath("tariff_nl_tnm_ac.json").read_bytes()
    return parse_tariff(loads_exact(text))


def _variant(**changes: Any) -> Tariff:
    return Tariff.model_validate(_sample().model_dump(mode="python") | changes)


@pytest.fixture
def before_0015(postgres_server_url: str) -> Iterator[str]:
    with scratch_database(postgres_server_url, "roamclear_rehash", migrate=False) as url:
        _migrate_until(url, _BEFORE)
        yield url


def test_stored_versions_get_the_hash_bookings_record(before_0015: str) -> None:
    sample = _sample()
    # numbers with trailing zeros, an unknown field, a sub-second last_updated
    other = _variant(
        id="DC-FAST",
        last_updated=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        x_vendor={"b": "2", "a": "1.50"},
    )
    assert _old_hash(sample) != tariff_content_hash(sample)  # the defect
    with connect(before_0015) as conn:
        for tariff in (sample, other):
            _stored_before_0015(conn, tariff)
        conn.commit()

    assert "0015_tariff_hash" in apply_migrations(before_0015)

    with connect(before_0015) as conn:
        stored = conn.execute(
            "SELECT tariff_id, content_hash FROM tariff_version ORDER BY tariff_id"
        ).fetchall()
        assert stored == [
            {"tariff_id": t.id, "content_hash": tariff_content_hash(t)} for t in (sample, other)
        ]
        # what clearing reads back hashes the same
        snapshot = reference_store.load_snapshot(conn)
        loaded = {t.id: tariff_content_hash(t) for ts in snapshot.tariffs.values() for t in ts}
        assert loaded == {row["tariff_id"]: row["content_hash"] for row in stored}
        # publishing the same tariffs again is recognised as the stored versions
        now = datetime.now(UTC)
        again = [reference_store.store_tariff(conn, t, now) for t in (sample, other)]
        assert [(s.new_version, s.created) for s in again] == [(False, False)] * 2
        conn.commit()
        assert conn.execute("SELECT count(*) AS n FROM tariff_version").fetchone() == {"n": 2}
        # the table is append-only again
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
            conn.execute("UPDATE tariff_version SET content_hash = 'x'")


def test_two_versions_one_hash_stop_the_migration(before_0015: str) -> None:
    # Stored before 0015 by hand (store_tariff refused it): one version, its unknown fields in
    # another order. The old hash told the two apart, the one tariff hash does not.
    first = _variant(x_vendor={"a": "1", "b": "2"})
    second = _variant(x_vendor={"b": "2", "a": "1"})
    assert _old_hash(first) != _old_hash(second)
    with connect(before_0015) as conn:
        for tariff in (first, second):
            _stored_before_0015(conn, tariff)
        conn.commit()
    with pytest.raises(TariffHashCollision, match=r"under one hash: \[.NL\*TNM\*AC-STANDARD.\]"):
        apply_migrations(before_0015)
    with connect(before_0015) as conn:  # nothing changed
        hashes = conn.execute("SELECT content_hash FROM tariff_version").fetchall()
    assert {row["content_hash"] for row in hashes} == {_old_hash(first), _old_hash(second)}
