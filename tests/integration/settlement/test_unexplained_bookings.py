"""A balanced transaction inserted by hand before a close is sealed into its batch with the
rest: `statements verify` must name it (its figures and seal are otherwise consistent)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from settlement.batches.model import ClosePolicy
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.statements import verify
from tests.integration.settlement.factories import SEAL_KEY, TEST_KEYS, at, book

pytestmark = pytest.mark.integration


def test_verify_names_a_booking_made_outside_clearing(fresh_database_url: str) -> None:
    with connect(fresh_database_url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", end=at("2025-05-10 12:00"))
        forged = uuid.uuid4()
        conn.execute(
            "INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash,"
            " currency, cpo, emsp, session_start, session_end, energy_kwh, amount_excl_vat,"
            " amount_incl_vat, fee, rating) VALUES (%s, 'NL*TNM*FORGED', 'CHARGE', 'x', 'EUR',"
            " 'NL*TNM', 'DE*EMS', %s, %s, 1, 50, 50, 0, '{}')",
            (forged, at("2025-05-11 10:00"), at("2025-05-11 11:00")),
        )
        conn.execute(
            "INSERT INTO ledger_posting (transaction_id, account, side, amount, currency,"
            " value_time, settlement_period) VALUES"
            " (%(t)s, 'partner:DE*EMS', 'DEBIT', 50, 'EUR', %(at)s, 'MONTHLY'),"
            " (%(t)s, 'partner:NL*TNM', 'CREDIT', 50, 'EUR', %(at)s, 'MONTHLY')",
            {"t": forged, "at": at("2025-05-11 11:00")},
        )
        conn.commit()
    policy = ClosePolicy(time_zone="UTC", grace=timedelta(hours=1))
    report = close_once(fresh_database_url, at("2025-06-02 00:00"), policy, SEAL_KEY)
    with connect(fresh_database_url) as conn:
        results = {b.partner: verify(conn, b.batch_id, TEST_KEYS) for b in report.batches}
    for partner in ("NL*TNM", "DE*EMS"):
        assert not results[partner].matches
        assert any("booked outside clearing" in d for d in results[partner].differences)
