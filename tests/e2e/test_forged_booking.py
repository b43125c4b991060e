"""A balanced transaction inserted straight into the ledger (by anyone who can write the
tables) has no archived record and no outcome: `counts` must show it, not hide it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pipeline.config import Settings
from settlement.store import books
from settlement.store.db import connect
from tests.e2e.cli import roamclear
from tests.e2e.test_partner_keys import _env
from tests.integration.clearing.helpers import mixed_batch, register_reference_data, submit
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.e2e

_FORGE = """
INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash, currency, cpo, emsp,
    session_start, session_end, energy_kwh, amount_excl_vat, amount_incl_vat, fee, rating)
VALUES (%(id)s, 'NL*TNM*FORGED-1', 'CHARGE', 'x', 'EUR', 'NL*TNM', 'DE*EMP', now(), now(), 1,
        100, 100, 0, '{"settlement_period": "MONTHLY"}')
"""
_FORGE_POSTINGS = """
INSERT INTO ledger_posting (transaction_id, account, side, amount, currency, value_time,
    settlement_period)
VALUES (%(id)s, 'partner:DE*EMP', 'CREDIT', 100, 'EUR', now(), 'MONTHLY'),
       (%(id)s, 'partner:NL*TNM', 'DEBIT', 100, 'EUR', now(), 'MONTHLY')
"""


def test_a_forged_booking_shows_up_in_counts(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url
    register_reference_data(settings)
    records, _ = mixed_batch()
    asyncio.run(_clear(settings, submit(settings, records)))
    with connect(settings.database_url) as conn:
        assert set(books.unexplained(conn).values()) == {0}
    whole = roamclear(_env(settings), "counts", "--json")
    assert whole.returncode == 0, whole.stderr

    with connect(settings.database_url) as conn:
        forged_id = uuid.uuid4()
        conn.execute(_FORGE, {"id": forged_id})
        conn.execute(_FORGE_POSTINGS, {"id": forged_id})
        conn.commit()
        assert books.unexplained(conn)["transactions_without_ledgered_record"] == 1
    forged = roamclear(_env(settings), "counts")
    assert forged.returncode == 1
    assert "BOOKS NOT EXPLAINED: 1 transactions without ledgered record" in forged.stdout
