"""Disputes against a real PostgreSQL: the store's rules, and the triggers behind them that
refuse the same things when the store is bypassed (illegal transitions, history without a
move, a credit that does not reverse the CDR, a second open dispute per CDR and party)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from schemas.hub.ledger import TransactionKind
from settlement.batches.model import ClosePolicy
from settlement.disputes import HUB, Action, DisputeRefused, DisputeState, mark_statement
from settlement.statements.build import statement_json
from settlement.store import books
from settlement.store import disputes as store
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.statements import load_statement, verify
from settlement.store.urls import with_user
from tests.integration.settlement.factories import SEAL_KEY, TEST_KEYS, at, book

pytestmark = pytest.mark.integration

Refused = psycopg.IntegrityError  # integrity_constraint_violation, unique_violation, …
Conn = psycopg.Connection[dict[str, Any]]


def _key(conn: Conn, transaction_id: str) -> str:
    row = conn.execute(
        "SELECT cdr_key FROM ledger_transaction WHERE transaction_id = %s", (transaction_id,)
    ).fetchone()
    assert row is not None
    return str(row["cdr_key"])


def _credit(conn: Conn, original_id: str, key: str) -> None:
    """A credit CDR's booking as clearing makes it: a REVERSAL mirroring every posting, its
    amounts its original's negated."""
    conn.execute(
        "INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, reverses, content_hash,"
        " currency, cpo, emsp, session_start, session_end, location_id, energy_kwh,"
        " amount_excl_vat, amount_incl_vat, fee, rating) SELECT gen_random_uuid(), %s,"
        " 'REVERSAL', transaction_id, content_hash, currency, cpo, emsp, session_start,"
        " session_end, location_id, energy_kwh, -amount_excl_vat, -amount_incl_vat, -fee, rating"
        " FROM ledger_transaction WHERE transaction_id = %s",
        (key, original_id),
    )
    conn.execute(
        "INSERT INTO ledger_posting (transaction_id, account, side, amount, currency, value_time,"
        " settlement_period) SELECT (SELECT transaction_id FROM ledger_transaction"
        " WHERE cdr_key = %s), account, CASE side WHEN 'DEBIT' THEN 'CREDIT' ELSE 'DEBIT' END,"
        " amount, currency, value_time, settlement_period FROM ledger_posting"
        " WHERE transaction_id = %s",
        (key, original_id),
    )


def _ledger(conn: Conn) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM ledger_transaction) AS t,"
        " (SELECT count(*) FROM ledger_posting) AS p"
    ).fetchone()
    assert row is not None
    return row["t"], row["p"]


def _refused(conn: Conn, sql: str, params: tuple[object, ...], match: str) -> None:
    """`sql` (and the commit, where deferred checks run) is refused by the database."""
    with pytest.raises(Refused, match=match):
        conn.execute(sql, params)
        conn.commit()
    conn.rollback()


def test_disputes_move_only_along_their_guarded_edges(settle_db: str) -> None:
    with connect(settle_db) as admin:
        disputed_id = book(admin, "NL*TNM", "DE*EMS", "20.0000")
        other_id = book(admin, "NL*TNM", "DE*EMS", "5.0000")
        disputed, other = _key(admin, disputed_id), _key(admin, other_id)
        _credit(admin, other_id, "NL*TNM*CR-OTHER")
        _credit(admin, disputed_id, "NL*TNM*CR-1")
        admin.commit()
        ledger_before = _ledger(admin)

    # the store, as `roamclear disputes` runs it: the operator role
    with connect(with_user(settle_db, "roamclear_operator")) as conn:
        first = store.open_dispute(conn, disputed, "DE*EMS", "AMOUNT_INCORRECT", "4.5", "", "t")
        conn.commit()
        assert (first.state, first.claimed_amount, first.currency) == (
            DisputeState.OPEN, Decimal("4.5"), "EUR",
        )  # fmt: skip
        with pytest.raises(DisputeRefused, match=f"already has dispute {first.dispute_id} open"):
            store.open_dispute(conn, disputed, "DE*EMS", "DUPLICATE", "1", "", "t")
        conn.rollback()
        with pytest.raises(DisputeRefused, match="neither the CPO"):
            store.open_dispute(conn, disputed, "FR*XYZ", "OTHER", "1", "", "t")
        conn.rollback()
        by_cpo = store.open_dispute(conn, disputed, "NL*TNM", "TARIFF_INCORRECT", "2", "", "t")
        conn.commit()

        # withdrawn by the opener only; then final, and a new one may open
        with pytest.raises(DisputeRefused, match="only DE\\*EMS, which opened it"):
            store.move(conn, first.dispute_id, Action.WITHDRAW, "NL*TNM", "no", "t")
        conn.rollback()
        gone = store.move(conn, first.dispute_id, Action.WITHDRAW, "DE*EMS", "paid", "cli:ops")
        conn.commit()
        rows = [(t.from_state, t.to_state, t.actor, t.recorded_by, t.note) for t in gone.history]
        assert rows == [
            (None, DisputeState.OPEN, "DE*EMS", "t", ""),
            (DisputeState.OPEN, DisputeState.WITHDRAWN, "DE*EMS", "cli:ops", "paid"),
        ]  # fmt: skip
        with pytest.raises(DisputeRefused, match="withdrawn cannot be moved to accepted"):
            store.move(conn, first.dispute_id, Action.ACCEPT, HUB, "x", "t", "NL*TNM*CR-1")
        conn.rollback()
        again = store.open_dispute(conn, disputed, "DE*EMS", "DUPLICATE", "20", "again", "t")
        conn.commit()

        # accepted only with a credit that reverses this very CDR
        with pytest.raises(DisputeRefused, match=re.escape(f"reverses {other}, not {disputed}")):
            store.move(conn, again.dispute_id, Action.ACCEPT, HUB, "ok", "t", "NL*TNM*CR-OTHER")
        conn.rollback()
        with pytest.raises(DisputeRefused, match="either the credit CDR or the adjustment amount"):
            store.move(conn, again.dispute_id, Action.ACCEPT, HUB, "ok", "t")
        conn.rollback()
        accepted = store.move(conn, again.dispute_id, Action.ACCEPT, HUB, "ok", "t", "NL*TNM*CR-1")
        conn.commit()
        assert (accepted.state, accepted.credit_cdr_key) == (DisputeState.ACCEPTED, "NL*TNM*CR-1")
        declined = store.move(conn, by_cpo.dispute_id, Action.DECLINE, HUB, "as published", "t")
        conn.commit()
        assert declined.history[-1].note == "as published"
        assert [d.dispute_id for d in store.list_disputes(conn, DisputeState.OPEN)] == []
        assert {d.state for d in store.list_disputes(conn, opened_by="DE*EMS")} == {
            DisputeState.WITHDRAWN, DisputeState.ACCEPTED,
        }  # fmt: skip
        # the operator may move states; what was disputed is beyond its privileges
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE dispute SET reason = 'OTHER'")
        conn.rollback()
        written = store.open_dispute(conn, other, "NL*TNM", "OTHER", "1", "", "t")
        store.move(conn, written.dispute_id, Action.WRITE_OFF, HUB, "paid by bank", "t")
        conn.commit()

    with connect(settle_db) as admin:
        assert _ledger(admin) == ledger_before  # a dispute books nothing and edits nothing
        open_id = store.open_dispute(admin, other, "DE*EMS", "OTHER", "1", "", "t").dispute_id
        admin.commit()
        _bypassing_the_store(admin, disputed, other, open_id, first.dispute_id)
    _two_deciders_one_wins(settle_db, open_id)


def _two_deciders_one_wins(settle_db: str, dispute_id: int) -> None:
    """Decline and write off at once: the row lock orders them; the second finds it decided."""
    start = threading.Barrier(2)

    def decide(action: Action) -> str:
        with connect(with_user(settle_db, "roamclear_operator"), autocommit=True) as conn:
            start.wait()
            try:
                return store.move(conn, dispute_id, action, HUB, "race", "t").state.value
            except DisputeRefused as refused:
                return str(refused)

    with ThreadPoolExecutor(2) as pool:
        answers = sorted(pool.map(decide, (Action.DECLINE, Action.WRITE_OFF)))
    decided = [a for a in answers if a in ("declined", "written_off")]
    assert len(decided) == 1, answers
    assert f"a dispute that is {decided[0]} cannot be moved" in "".join(answers)


def _bypassing_the_store(
    admin: Conn, disputed: str, other: str, open_id: int, withdrawn_id: int
) -> None:
    """As the administrator, straight SQL: the triggers refuse what the store refuses."""
    _refused(admin, "UPDATE dispute SET state = 'declined' WHERE dispute_id = %s", (open_id,),
             "without its dispute_transition row")  # fmt: skip
    _refused(admin, "UPDATE dispute SET state = 'open', transitions = 3 WHERE dispute_id = %s",
             (withdrawn_id,), "transition withdrawn -> open refused")  # fmt: skip
    _refused(admin, "UPDATE dispute SET claimed_amount = 1000 WHERE dispute_id = %s", (open_id,),
             "what was disputed never changes")  # fmt: skip
    # a history row whose move never happens is refused at commit
    _refused(admin, "INSERT INTO dispute_transition (dispute_id, seq, from_state, to_state, "
             "actor, recorded_by, note) VALUES (%s, 2, 'open', 'declined', 'hub', 'x', 'no')",
             (open_id,), "records a move that did not happen")  # fmt: skip
    # a history row and its move, but a credit of another CDR
    admin.execute(
        "INSERT INTO dispute_transition (dispute_id, seq, from_state, to_state, actor, "
        "recorded_by, note) VALUES (%s, 2, 'open', 'accepted', 'hub', 'x', 'ok')",
        (open_id,),
    )
    _refused(admin, "UPDATE dispute SET state = 'accepted', transitions = 2, credit_cdr_key = "
             "'NL*TNM*CR-1' WHERE dispute_id = %s", (open_id,),
             re.escape(f"credit NL*TNM*CR-1 does not reverse {other}"))  # fmt: skip
    _refused(admin, "INSERT INTO dispute_transition (dispute_id, seq, from_state, to_state, "
             "actor, recorded_by, note) VALUES (%s, 2, 'open', 'withdrawn', 'NL*TNM', 'x', 'y')",
             (open_id,), "NL\\*TNM may not move it to withdrawn")  # fmt: skip
    _refused(admin, "INSERT INTO dispute (cdr_key, opened_by, reason, claimed_amount, currency,"
             " state, transitions) VALUES (%s, 'DE*EMS', 'OTHER', 1, 'EUR', 'open', 1)",
             (other,), "one_open_dispute_per_cdr_and_party")  # fmt: skip
    _refused(admin, "INSERT INTO dispute (cdr_key, opened_by, reason, claimed_amount, currency,"
             " state, transitions) VALUES (%s, 'FR*XYZ', 'OTHER', 1, 'EUR', 'open', 1)",
             (disputed,), "neither its CPO nor its eMSP")  # fmt: skip
    _refused(admin, "INSERT INTO dispute (cdr_key, opened_by, reason, claimed_amount, currency,"
             " state, transitions) VALUES ('NL*TNM*CR-1', 'DE*EMS', 'OTHER', 1, 'EUR', 'open', 1)",
             (), "only a booked CHARGE")  # fmt: skip
    # opened without its history row: refused at commit
    _refused(admin, "INSERT INTO dispute (cdr_key, opened_by, reason, claimed_amount, currency,"
             " state, transitions) VALUES (%s, 'NL*TNM', 'OTHER', 1, 'EUR', 'open', 1)",
             (disputed,), "has no opening dispute_transition row")  # fmt: skip
    for sql in ("DELETE FROM dispute_transition", "UPDATE dispute_transition SET note = 'x'",
                "DELETE FROM dispute", "TRUNCATE dispute_transition CASCADE"):  # fmt: skip
        _refused(admin, sql, (), "append-only")


def test_an_adjustment_lands_in_an_open_period_and_every_statement_verifies(
    settle_db: str,
) -> None:
    with connect(settle_db) as admin:
        may_key = _key(
            admin, book(admin, "NL*TNM", "DE*EMS", "20.0000", end=at("2025-05-10 12:00"))
        )
        later_key = _key(
            admin, book(admin, "NL*TNM", "DE*EMS", "8.0000", end=at("2025-05-11 12:00"))
        )
        admin.commit()
    may = close_once(settle_db, at("2025-06-02 00:00"), ClosePolicy(), SEAL_KEY).batches
    assert len(may) == 2

    with connect(with_user(settle_db, "roamclear_operator")) as conn:
        emsp = store.open_dispute(conn, may_key, "DE*EMS", "AMOUNT_INCORRECT", "5", "", "t")
        cpo = store.open_dispute(conn, later_key, "NL*TNM", "TARIFF_INCORRECT", "1.25", "", "t")
        conn.commit()
        with pytest.raises(DisputeRefused, match="adjustment 6 exceeds the claimed 5"):
            store.move(conn, emsp.dispute_id, Action.ACCEPT, HUB, "ok", "t", None, "6")
        conn.rollback()
        # as the store books it, with a value time in June (the function's own parameter),
        # so that the test can close the period it lands in
        conn.execute(
            "SELECT dispute_accept_by_adjustment(%s, 4, 'cli:t', 'idle fee refunded', %s)",
            (emsp.dispute_id, at("2025-06-10 00:00")),
        )
        conn.commit()
        _refused(conn, "SELECT dispute_accept_by_adjustment(%s, 4, 'x', 'again')",
                 (emsp.dispute_id,), "an adjustment needs an open dispute")  # fmt: skip
        accepted = store.move(conn, cpo.dispute_id, Action.ACCEPT, HUB, "ok", "t", None, "1.25")
        conn.commit()
        assert accepted.state is DisputeState.ACCEPTED and accepted.adjustment_id is not None
        legs = conn.execute(
            "SELECT account, side, amount FROM ledger_posting WHERE transaction_id = %s "
            "ORDER BY side",
            (accepted.adjustment_id,),
        ).fetchall()
        assert [(r["account"], r["side"], r["amount"]) for r in legs] == [
            ("partner:NL*TNM", "CREDIT", Decimal("1.2500")),
            ("partner:DE*EMS", "DEBIT", Decimal("1.2500")),
        ]

    june = close_once(settle_db, at("2025-07-02 00:00"), ClosePolicy(), SEAL_KEY).batches
    with connect(settle_db) as admin:
        assert set(books.unexplained(admin).values()) == {0}
        for batch in (*may, *june):  # the closed May batches are untouched
            assert verify(admin, batch.batch_id, TEST_KEYS).matches, batch
        (ems_june,) = [b for b in june if b.partner == "DE*EMS"]
        (line,) = load_statement(admin, ems_june.batch_id).lines
        assert (line.kind, line.cdr_key, line.net, line.amount_incl_vat, line.fee_paid) == (
            TransactionKind.ADJUSTMENT, f"DISPUTE*{emsp.dispute_id}", Decimal("4.0000"),
            Decimal("-4.0000"), 0,
        )  # fmt: skip
        assert [(v.vat, v.incl_vat) for v in line.vat_breakdown] == [("21.0", Decimal("-4.0000"))]
        # marked on statements: the adjustment names its dispute and the original's period
        june_body = mark_statement(
            statement_json(load_statement(admin, ems_june.batch_id)),
            store.statement_marks(admin, ems_june.batch_id),
        )
        assert june_body["totals"]["disputed_lines"] == 1
        (mark,) = june_body["lines"][0]["disputes"]
        assert (mark["dispute_id"], mark["state"], mark["adjusts"]) == (
            emsp.dispute_id, "accepted", may_key,
        )  # fmt: skip
        assert mark["original_value_time"].startswith("2025-05-10T12:00:00")
        (ems_may,) = [b for b in may if b.partner == "DE*EMS"]
        may_body = mark_statement(
            statement_json(load_statement(admin, ems_may.batch_id)),
            store.statement_marks(admin, ems_may.batch_id),
        )
        # both its lines: one disputed by itself, the other by its CPO
        assert may_body["totals"]["disputed_lines"] == 2
        assert {
            line["cdr_key"]: [m["opened_by"] for m in line["disputes"]]
            for line in may_body["lines"]
        } == {may_key: ["DE*EMS"], later_key: ["NL*TNM"]}
        balance = admin.execute(
            "SELECT sum(CASE side WHEN 'CREDIT' THEN amount ELSE -amount END) AS s "
            "FROM ledger_posting"
        ).fetchone()
        assert balance is not None and balance["s"] == 0
