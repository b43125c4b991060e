"""What PostgreSQL itself enforces: closed batches immutable, membership frozen, two closers
never overlap, a killed closer leaves nothing, verify catches tampering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from settlement.batches.model import ClosePolicy
from settlement.store import closing
from settlement.store.closing import CloseReport, close_once
from settlement.store.db import connect
from settlement.store.statements import verify
from tests.integration.settlement.factories import SEAL_KEY, TEST_KEYS, at, book

pytestmark = pytest.mark.integration
POLICY = ClosePolicy(time_zone="UTC", grace=timedelta(hours=1))
AS_OF = at("2025-06-02 00:00")
ROOT = Path(__file__).resolve().parents[3]


def _seed(url: str, count: int = 20) -> None:
    with connect(url) as conn:
        for i in range(count):
            book(
                conn,
                "NL*TNM",
                "DE*EMS",
                f"{i + 1}.1234",
                "0.0100",
                end=at("2025-05-01 00:00") + timedelta(hours=7 * i),
                kind="WEEKLY",
            )
        conn.commit()


def _closed(url: str) -> int:
    return close_once(url, AS_OF, POLICY, SEAL_KEY).batches[0].batch_id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE settlement_batch SET checksum = repeat('0', 64) WHERE batch_id = {id}",
        "UPDATE settlement_batch SET watermark = watermark + 1 WHERE batch_id = {id}",
        "UPDATE settlement_batch SET state = 'OPEN' WHERE batch_id = {id}",
        "DELETE FROM settlement_batch WHERE batch_id = {id}",
        "TRUNCATE settlement_batch CASCADE",
        "UPDATE ledger_posting SET amount = amount + 1 WHERE posting_id = 1",
        "INSERT INTO ledger_posting (posting_id, transaction_id, account, side, amount, currency,"
        " value_time, settlement_period) SELECT 2, transaction_id, account, side, amount,"
        " currency, value_time, settlement_period FROM ledger_posting WHERE posting_id = 1",
    ],
)
def test_the_database_refuses_changes_to_closed_batches(settle_db: str, statement: str) -> None:
    _seed(settle_db, 3)
    batch_id = _closed(settle_db)
    with connect(settle_db) as conn, pytest.raises(psycopg.errors.IntegrityError):
        conn.execute(statement.format(id=batch_id))


def test_two_closers_at_once_never_overlap(settle_db: str) -> None:
    _seed(settle_db)
    reports: list[CloseReport] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        reports.append(close_once(settle_db, AS_OF, POLICY, SEAL_KEY))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in reports if r.batches]
    assert len(winners) == 1 and len(reports) == 2
    with connect(settle_db) as conn:
        rows = conn.execute(
            "SELECT p.posting_id, count(*) AS n FROM settlement_batch b"
            " CROSS JOIN LATERAL settlement_batch_postings(b) p GROUP BY 1"
        ).fetchall()
        partner_postings = conn.execute(
            "SELECT count(*) AS n FROM ledger_posting WHERE account LIKE 'partner:%'"
        ).fetchone()
    assert all(row["n"] == 1 for row in rows)
    assert partner_postings is not None and len(rows) == partner_postings["n"]


_PAUSED_CLOSER = """
import sys, time
from datetime import datetime, timedelta, UTC
from settlement.batches.model import ClosePolicy
from settlement.store import closing
booked = closing._book_rounding
def pause(conn, planned):
    booked(conn, planned)          # rounding postings written, batches not yet
    print("paused", flush=True)
    time.sleep(600)
closing._book_rounding = pause
from tests.integration.settlement.factories import SEAL_KEY
closing.close_once(sys.argv[1], datetime(2025, 6, 2, tzinfo=UTC),
                   ClosePolicy(grace=timedelta(hours=1)), SEAL_KEY)
"""


def test_a_killed_closer_leaves_nothing_half_closed(settle_db: str) -> None:
    _seed(settle_db)
    process = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_CLOSER, settle_db],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "paused"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    with connect(settle_db) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM settlement_batch) AS batches,"
            " (SELECT count(*) FROM ledger_transaction WHERE kind = 'ROUNDING') AS rounding,"
            " (SELECT count(*) FROM settlement_run) AS runs"
        ).fetchone()
    assert counts == {"batches": 0, "rounding": 0, "runs": 0}
    report = close_once(settle_db, AS_OF, POLICY, SEAL_KEY)  # the lock died with the session
    assert report.batches


def test_a_failed_close_rolls_back_and_is_recorded(
    settle_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(settle_db, 3)

    def broken(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(closing, "_insert_batches", broken)
    with pytest.raises(RuntimeError):
        close_once(settle_db, AS_OF, POLICY, SEAL_KEY)
    with connect(settle_db) as conn:
        runs = conn.execute("SELECT state, error FROM settlement_run").fetchall()
        batches = conn.execute("SELECT count(*) AS n FROM settlement_batch").fetchone()
    assert [r["state"] for r in runs] == ["FAILED"] and "disk on fire" in runs[0]["error"]
    assert batches == {"n": 0}


def test_verify_detects_a_forged_checksum_and_a_forged_posting(settle_db: str) -> None:
    _seed(settle_db, 5)
    batch_id = _closed(settle_db)
    with connect(settle_db) as conn:
        assert verify(conn, batch_id, TEST_KEYS).matches
        # a superuser switching triggers off can forge anything; verify still sees it
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE settlement_batch SET checksum = repeat('a', 64) WHERE batch_id = %s",
            (batch_id,),
        )
        conn.commit()
        result = verify(conn, batch_id, TEST_KEYS)
        assert not result.matches and any("checksum" in d for d in result.differences)
    other = _closed_second(settle_db)
    with connect(settle_db) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO ledger_posting (posting_id, transaction_id, account, side, amount,"
            " currency, value_time, settlement_period) SELECT 0, p.transaction_id, p.account,"
            " p.side, 1.0000, p.currency, p.value_time, p.settlement_period FROM settlement_batch b"
            " CROSS JOIN LATERAL settlement_batch_postings(b) p WHERE b.batch_id = %s LIMIT 1",
            (other,),
        )
        conn.commit()
        result = verify(conn, other, TEST_KEYS)
    assert not result.matches and any("postings" in d for d in result.differences)


def _closed_second(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT max(batch_id) AS id FROM settlement_batch").fetchone()
    assert row is not None
    return int(row["id"])
