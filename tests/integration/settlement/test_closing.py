"""The SQL closer against real PostgreSQL: close, late postings, re-close, rounding, and
agreement with the pure core (same batches and totals; every batch verifies)."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.ledger import Side
from settlement.batches import closer
from settlement.batches.model import ClosedBatch, ClosePolicy, LedgerPosting
from settlement.store.closing import CloseRefused, close_once
from settlement.store.db import connect
from settlement.store.statements import verify
from tests.integration.settlement.factories import SEAL_KEY, TEST_KEYS, at, book

pytestmark = pytest.mark.integration
POLICY = ClosePolicy(time_zone="UTC", grace=timedelta(hours=1))


def _ledger_sum(url: str) -> Decimal:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT sum(CASE side WHEN 'CREDIT' THEN amount ELSE -amount END) AS s"
            " FROM ledger_posting"
        ).fetchone()
    assert row is not None
    return Decimal(row["s"])


def test_close_nets_each_partner_once_per_currency_and_period(settle_db: str) -> None:
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", "0.1500")
        book(conn, "NL*TNM", "BE*EMB", "5.1234", "0.0768")
        book(conn, "DE*EMS", "NL*TNM", "3.3333", "0.0500")  # TNM also as eMSP: one net
        book(conn, "NL*TNM", "DE*EMS", "7.0000", "0.1000", end=at("2025-06-03 09:00"))
        conn.commit()
    report = close_once(settle_db, at("2025-06-02 00:00"), POLICY, SEAL_KEY)
    by_partner = {b.partner: b for b in report.batches}
    assert set(by_partner) == {"NL*TNM", "DE*EMS", "BE*EMB"}
    tnm = by_partner["NL*TNM"]
    # 9.85 + 5.0466 - 3.3333 = 11.5633 -> 11.56, rounding -0.0033 on hub:rounding
    assert tnm.net_amount == Decimal("11.5600") and tnm.rounding == Decimal("-0.0033")
    assert tnm.postings == 4  # three CDR postings + the rounding posting
    for batch in report.batches:
        assert batch.net_amount == batch.net_amount.quantize(Decimal("0.01"))
        with connect(settle_db) as conn:
            assert verify(conn, batch.batch_id, TEST_KEYS).matches
    assert _ledger_sum(settle_db) == 0  # the rounding transactions balance
    again = close_once(settle_db, at("2025-06-02 00:00"), POLICY, SEAL_KEY)
    assert again.run_id is None and again.batches == ()


def test_late_posting_goes_to_the_next_batch_flagged(settle_db: str) -> None:
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", end=at("2025-05-20 10:00"))
        conn.commit()
    may = close_once(settle_db, at("2025-06-01 02:00"), POLICY, SEAL_KEY)
    may_tnm = next(b for b in may.batches if b.partner == "NL*TNM")
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "4.0000", "0.0400", end=at("2025-05-31 23:00"))  # late
        book(conn, "NL*TNM", "DE*EMS", "2.0000", "0.0200", end=at("2025-06-15 10:00"))
        conn.commit()
    assert (
        close_once(settle_db, at("2025-06-20 00:00"), POLICY, SEAL_KEY).batches == ()
    )  # June is open
    june = close_once(settle_db, at("2025-07-01 01:00"), POLICY, SEAL_KEY)
    june_tnm = next(b for b in june.batches if b.partner == "NL*TNM")
    assert june_tnm.period_start == at("2025-06-01 00:00")
    assert (june_tnm.postings, june_tnm.late_postings) == (2, 1)
    assert june_tnm.net_amount == Decimal("3.9600") + Decimal("1.9800")
    with connect(settle_db) as conn:
        assert verify(
            conn, may_tnm.batch_id, TEST_KEYS
        ).matches  # May is untouched by the late posting
        assert verify(conn, june_tnm.batch_id, TEST_KEYS).matches


def test_future_as_of_is_refused(settle_db: str) -> None:
    with pytest.raises(CloseRefused):
        close_once(settle_db, at("2999-01-01 00:00"), POLICY, SEAL_KEY)


def _random_ledger(conn: Any, rng: random.Random, count: int) -> None:
    partners = ["NL*TNM", "DE*EMS", "BE*EMB", "FR*CPO"]
    kinds = ["DAILY", "WEEKLY", "MONTHLY"]
    for _ in range(count):
        cpo, emsp = rng.sample(partners, 2)
        end = at("2025-04-25 00:00") + timedelta(minutes=rng.randrange(60 * 24 * 50))
        amount = Decimal(rng.randrange(1, 5_000_000)) / 10_000
        fee = (amount * Decimal("0.015")).quantize(Decimal("0.0001"))
        book(
            conn,
            cpo,
            emsp,
            str(amount),
            str(fee),
            end=end,
            kind=rng.choice(kinds),
            currency=rng.choice(["EUR", "EUR", "JPY"]),
        )


def _postings(url: str) -> list[LedgerPosting]:
    with connect(url) as conn:
        rows = conn.execute("SELECT * FROM ledger_posting ORDER BY posting_id").fetchall()
    return [
        LedgerPosting(
            r["posting_id"],
            str(r["transaction_id"]),
            r["account"],
            Side(r["side"]),
            r["amount"],
            r["currency"],
            r["value_time"],
            SettlementPeriod(r["settlement_period"]),
        )
        for r in rows
    ]


def test_sql_closer_agrees_with_the_pure_core(settle_db: str) -> None:
    rng = random.Random(11)
    batches: list[ClosedBatch] = []
    for as_of in (at("2025-05-09 12:00"), at("2025-05-27 00:00"), at("2025-06-20 00:00")):
        with connect(settle_db) as conn:
            _random_ledger(conn, rng, 60)
            conn.commit()
        before = _postings(settle_db)
        expected = closer.close(before, batches, as_of, POLICY, max(p.posting_id for p in before))
        report = close_once(settle_db, as_of, POLICY, SEAL_KEY)
        got = {(b.partner, b.currency, b.period_kind, b.period_start): b for b in report.batches}
        assert len(got) == len(expected.batches)
        for batch in expected.batches:
            found = got[
                (
                    batch.key.partner,
                    batch.key.currency,
                    batch.key.period_kind.value,
                    batch.period_start,
                )
            ]
            assert found.net_amount == batch.net and found.rounding == batch.rounding
            assert (found.postings, found.late_postings) == (
                batch.totals.postings,
                batch.totals.late_postings,
            )
            # the pure core's checksum is v1 (postings only); the stored one is v2 and sealed
            with connect(settle_db) as conn:
                assert verify(conn, found.batch_id, TEST_KEYS).matches
        batches.extend(expected.batches)
    assert _ledger_sum(settle_db) == 0
