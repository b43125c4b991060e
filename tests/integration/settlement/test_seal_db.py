"""Checksum v2 and the seal against real PostgreSQL: the SQL line is the Python line, verify
catches every kind of tampering (as a superuser with the triggers off), key rotation, and
batches closed before sealing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from schemas.hub.agreement import SettlementPeriod
from settlement.batches.checksum import (
    CHECKSUM_V1,
    LedgerLine,
    batch_checksum,
    batch_checksum_v2,
    body_digest,
    body_v2,
    line_digest,
    line_v2,
    posting_line,
    rounding_line,
)
from settlement.batches.model import BatchKey, ClosePolicy
from settlement.batches.seal import SealKey, SealKeys, SealStatus, seal
from settlement.keys import HubKey, HubKeyring
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.migrate import MIGRATIONS_DIR, _yoyo_url, apply_migrations
from settlement.store.sealing import line_digest_sql, line_v2_sql, stored_batch
from settlement.store.statements import list_statements, verify
from tests.conftest import scratch_database
from tests.integration.settlement.factories import SEAL_KEY, TEST_KEYS, at, book

pytestmark = pytest.mark.integration
POLICY = ClosePolicy(time_zone="UTC", grace=timedelta(hours=1))

_LINES = f"""
SELECT p.posting_id, p.transaction_id::text AS transaction_id, t.kind, t.cdr_key, t.cpo,
       t.emsp, t.session_start, t.session_end, t.location_id, t.energy_kwh,
       t.amount_excl_vat, t.amount_incl_vat, t.fee, p.side, p.amount,
       p.value_time < b.period_start AS late,
       (t.rating->'vat_breakdown')::text AS vat_breakdown,
       {line_v2_sql("p", "t", "p.value_time < b.period_start")} AS sql_line,
       {line_digest_sql("p", "t", "p.value_time < b.period_start")} AS sql_digest,
       p.transaction_id = b.rounding_transaction_id AS rounding
  FROM settlement_batch b
 CROSS JOIN LATERAL settlement_batch_postings(b) p
  JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
 WHERE b.batch_id = %s ORDER BY p.posting_id
"""


def _batch_id(url: str, partner: str, start: str) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT batch_id FROM settlement_batch WHERE partner = %s AND period_start = %s",
            (partner, at(start)),
        ).fetchone()
    assert row is not None
    return int(row["batch_id"])


def test_the_sql_line_is_the_python_line_and_the_close_seals_it(settle_db: str) -> None:
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0001", location="A|3:B ünï 💡")
        book(conn, "NL*TNM", "DE*EMS", "7.2500", location=None, vat=None)
        numbers = [{"vat": 21, "excl_vat": 8.2645, "incl_vat": 10.0}, {"vat": None}]
        book(conn, "DE*EMS", "NL*TNM", "4.0000", vat_breakdown=numbers)
        conn.commit()
    close_once(settle_db, at("2025-06-02 00:00"), POLICY, SEAL_KEY)
    batch_id = _batch_id(settle_db, "NL*TNM", "2025-05-01 00:00")
    with connect(settle_db) as conn:
        conn.execute("SET TimeZone = 'Asia/Kathmandu'")  # the session's zone must not matter
        rows = conn.execute(_LINES, (batch_id,)).fetchall()
        batch = conn.execute(
            "SELECT * FROM settlement_batch WHERE batch_id = %s", (batch_id,)
        ).fetchone()
        assert verify(conn, batch_id, TEST_KEYS).matches
    assert batch is not None and len(rows) == 4  # three CDR postings and the rounding leg
    lines = []
    for row in rows:
        line = LedgerLine(**{k: v for k, v in row.items() if not k.startswith(("sql", "round"))})
        assert line_v2(line) == row["sql_line"]
        assert line_digest(line_v2(line)) == row["sql_digest"]
        lines.append((line, row["rounding"]))
    body = body_v2(line for line, rounding in lines if not rounding)
    [rounding_digest] = [line_digest(line_v2(line)) for line, rounding in lines if rounding]
    stored = stored_batch(batch)
    checksum = batch_checksum_v2(stored, body, rounding_digest)
    assert batch["checksum_version"] == 2 and batch["checksum"] == checksum
    assert batch["seal_link"] == "-" and batch["seal_key_id"] == SEAL_KEY.key_id
    assert batch["seal"] == seal(SEAL_KEY, stored, checksum, "-")


def _chain(url: str) -> dict[str, Any]:
    """NL*TNM's May and June batches (one chain), the June CDR where TNM is CPO, and its
    postings."""
    with connect(url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", end=at("2025-05-10 12:00"))
        conn.commit()
    close_once(url, at("2025-06-02 00:00"), POLICY, SEAL_KEY)
    with connect(url) as conn:
        tx = book(conn, "NL*TNM", "DE*EMS", "20.0000", "1.5000", end=at("2025-06-10 12:00"))
        book(conn, "DE*EMS", "NL*TNM", "5.0000", "0.0500", end=at("2025-06-11 12:00"))
        conn.commit()
    close_once(url, at("2025-07-02 00:00"), POLICY, SEAL_KEY)
    may, june = (_batch_id(url, "NL*TNM", s) for s in ("2025-05-01", "2025-06-01"))
    with connect(url) as conn:
        for batch_id in (may, june):
            assert verify(conn, batch_id, TEST_KEYS).matches
    return {"may": may, "june": june, "tx": tx}


def _as_superuser(url: str, *statements: str, **params: Any) -> None:
    """Statements with every trigger off (``session_replication_role = replica``): what a
    superuser, or anyone who can write the tables and drop triggers, can do."""
    with connect(url) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement.format(**params))
        conn.commit()


def _balanced_rewrite(url: str, ids: dict[str, Any]) -> None:
    """One more euro to NL*TNM taken from the hub's fee: the transaction still balances,
    the stored total follows, and the unkeyed checksum is recomputed with our own code."""
    _as_superuser(
        url,
        "UPDATE ledger_posting SET amount = amount + 1 WHERE transaction_id = '{tx}'"
        " AND account = 'partner:NL*TNM'",
        "UPDATE ledger_posting SET amount = amount - 1 WHERE transaction_id = '{tx}'"
        " AND account = 'hub:fees'",
        "UPDATE settlement_batch SET credit_total = credit_total + 1 WHERE batch_id = {june}",
        **ids,
    )
    with connect(url) as conn:
        recomputed = verify(conn, ids["june"], TEST_KEYS).recomputed_checksum
    _as_superuser(
        url,
        f"UPDATE settlement_batch SET checksum = '{recomputed}' WHERE batch_id = {{june}}",
        **ids,
    )


def _replaced_previous(url: str, ids: dict[str, Any]) -> None:
    """May rewritten with one more euro, its checksum recomputed and a seal made with a key
    that is not the hub's, under the hub key's id."""
    _as_superuser(
        url,
        "UPDATE settlement_batch SET credit_total = credit_total + 1 WHERE batch_id = {may}",
        **ids,
    )
    with connect(url) as conn:
        recomputed = verify(conn, ids["may"], TEST_KEYS).recomputed_checksum
        row = conn.execute(
            "SELECT * FROM settlement_batch WHERE batch_id = %s", (ids["may"],)
        ).fetchone()
    assert row is not None
    forged = seal(
        SealKey(SEAL_KEY.key_id, b"an attacker's guess" * 2), stored_batch(row), recomputed, "-"
    )
    _as_superuser(
        url,
        f"UPDATE settlement_batch SET checksum = '{recomputed}', seal = '{forged}'"
        " WHERE batch_id = {may}",
        **ids,
    )


def _downgraded(url: str, ids: dict[str, Any]) -> None:
    """June rewritten as if closed before sealing: a version 1 checksum, no seal."""
    with connect(url) as conn:
        batch = conn.execute(
            "SELECT * FROM settlement_batch WHERE batch_id = %s", (ids["june"],)
        ).fetchone()
        postings = conn.execute(
            "SELECT p.* FROM settlement_batch b CROSS JOIN LATERAL settlement_batch_postings(b) p"
            " WHERE b.batch_id = %s ORDER BY p.posting_id",
            (ids["june"],),
        ).fetchall()
    assert batch is not None
    stored = stored_batch(batch)
    body = body_digest(
        posting_line(p["posting_id"], str(p["transaction_id"]), p["side"], p["amount"])
        for p in postings
        if p["transaction_id"] != batch["rounding_transaction_id"]
    )
    v1 = batch_checksum(
        stored.key,
        stored.period_start,
        stored.period_end,
        stored.watermark,
        stored.prior_watermark,
        body,
        rounding_line(None, None, None),
    )
    _as_superuser(
        url,
        f"UPDATE settlement_batch SET checksum_version = 1, checksum = '{v1}', seal = NULL,"
        " seal_key_id = NULL, seal_link = NULL WHERE batch_id = {june}",
        **ids,
    )


_TX = "UPDATE ledger_transaction SET {} WHERE transaction_id = '{{tx}}'"
TAMPERING: dict[str, tuple[str | Callable[[str, dict[str, Any]], None], str, int]] = {
    # name: (what the attacker does, the difference verify must report, the batch verified)
    "gross amount": (_TX.format("amount_incl_vat = amount_incl_vat + 1"), "checksum", 1),
    "VAT breakdown": (
        _TX.format("rating = jsonb_set(rating, '{{vat_breakdown,0,vat}}', '\"9.0\"')"),
        "checksum",
        1,
    ),
    "fee": (_TX.format("fee = fee + 0.0100"), "checksum", 1),
    "counterparty": (_TX.format("emsp = 'BE*EMB'"), "checksum", 1),
    "stored total": (
        "UPDATE settlement_batch SET late_net = late_net + 1 WHERE batch_id = {june}",
        "seal",
        1,
    ),
    "balanced rewrite, checksum recomputed": (_balanced_rewrite, "seal", 1),
    "previous batch deleted": ("DELETE FROM settlement_batch WHERE batch_id = {may}", "chain", 1),
    "previous batch replaced (its own verify)": (_replaced_previous, "seal", 0),
    "previous batch replaced (the next one's verify)": (_replaced_previous, "chain", 1),
    "rewritten as unsealed": (_downgraded, "seal", 1),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_verify_catches_tampering(settle_db: str, name: str) -> None:
    ids = _chain(settle_db)
    tamper, reported, which = TAMPERING[name]
    if callable(tamper):
        tamper(settle_db, ids)
    else:
        _as_superuser(settle_db, tamper, **ids)
    batch_id = (ids["may"], ids["june"])[which]
    with connect(settle_db) as conn:
        result = verify(conn, batch_id, TEST_KEYS)
    assert not result.matches, f"{name}: verify still says it matches"
    assert any(d.startswith(reported) for d in result.differences), result.differences


def test_a_rotated_key_still_verifies_while_the_keyring_keeps_it(settle_db: str) -> None:
    ids = _chain(settle_db)
    newer = HubKey.from_secret(b"the next hub key, 32 bytes long!")
    old = HubKeyring(HubKey.from_secret(b"roamclear test hub key, 32 bytes"))
    rotated = SealKeys.from_keyring(HubKeyring(newer, (old.current,)))
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "3.0000", end=at("2025-07-10 12:00"))
        conn.commit()
    close_once(settle_db, at("2025-08-02 00:00"), POLICY, rotated.current)
    july = _batch_id(settle_db, "NL*TNM", "2025-07-01")
    forgotten = SealKeys(rotated.current)
    with connect(settle_db) as conn:
        for batch_id in (ids["may"], ids["june"], july):
            assert verify(conn, batch_id, rotated).seal_status is SealStatus.VALID
        assert verify(conn, july, forgotten).matches
        lost = verify(conn, ids["june"], forgotten)
        listed = {s.batch_id: s.seal_status for s in list_statements(conn, forgotten).items}
    assert not lost.matches and lost.seal_status is SealStatus.UNKNOWN_KEY
    assert listed[ids["june"]] is SealStatus.UNKNOWN_KEY and listed[july] is SealStatus.VALID


def _migrate_until(url: str, last: str) -> None:
    backend = get_backend(_yoyo_url(url))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            wanted = migrations.filter(lambda m: m.id <= last)
            backend.apply_migrations_only(backend.to_apply(wanted))  # no grants: a partial schema
    finally:
        backend.connection.close()


def _close_v1_by_hand(conn: psycopg.Connection[Any]) -> int:
    """May closed the way the closer did before migration 0007: checksum v1, no seal."""
    row = conn.execute(
        "SELECT posting_id, transaction_id::text AS tx, side, amount FROM ledger_posting"
        " WHERE account = 'partner:NL*TNM'"
    ).fetchone()
    assert row is not None
    watermark = conn.execute("SELECT max(posting_id) AS w FROM ledger_posting").fetchone()
    assert watermark is not None
    key = BatchKey("partner:NL*TNM", "EUR", SettlementPeriod.MONTHLY)
    body = body_digest([posting_line(row["posting_id"], row["tx"], row["side"], row["amount"])])
    checksum = batch_checksum(
        key,
        at("2025-05-01 00:00"),
        at("2025-06-01 00:00"),
        watermark["w"],
        0,
        body,
        rounding_line(None, None, None),
    )
    run = conn.execute(
        "INSERT INTO settlement_run (as_of, settlement_tz, grace, state, scan_from, watermark,"
        " next_scan_from) VALUES (%s, 'UTC', '1 hour', 'CLOSED', 0, %s, %s) RETURNING run_id",
        (at("2025-06-02 00:00"), watermark["w"], watermark["w"]),
    ).fetchone()
    assert run is not None
    batch = conn.execute(
        "INSERT INTO settlement_batch (run_id, account, currency, period_kind, period_start,"
        " period_end, settlement_tz, state, watermark, prior_watermark, postings,"
        " late_postings, debit_total, credit_total, rounding, late_net, checksum)"
        " VALUES (%s, 'partner:NL*TNM', 'EUR', 'MONTHLY', %s, %s, 'UTC', 'CLOSING', %s, 0, 1,"
        " 0, 0, %s, 0, 0, %s) RETURNING batch_id",
        (
            run["run_id"],
            at("2025-05-01 00:00"),
            at("2025-06-01 00:00"),
            watermark["w"],
            row["amount"],
            checksum,
        ),
    ).fetchone()
    assert batch is not None
    conn.execute(
        "UPDATE settlement_batch SET state = 'CLOSED', closed_at = now() WHERE batch_id = %s",
        (batch["batch_id"],),
    )
    return int(batch["batch_id"])


def test_batches_closed_before_sealing_stay_unsealed_and_anchor_the_chain(
    postgres_server_url: str,
) -> None:
    # a database of its own, migrated only up to 0004: the schema before sealing
    with scratch_database(postgres_server_url, "roamclear_v1", migrate=False) as url:
        _migrate_until(url, "0004_archive_storage")
        with connect(url) as conn:
            book(conn, "NL*TNM", "DE*EMS", "10.0000", end=at("2025-05-10 12:00"))
            conn.commit()
            may = _close_v1_by_hand(conn)
            conn.commit()
        apply_migrations(url)  # 0007 onwards: the closed batch is not rewritten
        with connect(url) as conn:
            book(conn, "NL*TNM", "DE*EMS", "2.0000", end=at("2025-06-10 12:00"))
            conn.commit()
        close_once(url, at("2025-07-02 00:00"), POLICY, SEAL_KEY)
        june = _batch_id(url, "NL*TNM", "2025-06-01")
        with connect(url) as conn:
            old = verify(conn, may, TEST_KEYS)
            new = verify(conn, june, TEST_KEYS)
            link = conn.execute(
                "SELECT seal_link, watermark, run_id FROM settlement_batch WHERE batch_id = %s",
                (june,),
            ).fetchone()
            assert link is not None
            # a closer of an older release cannot add an unsealed batch after sealed ones
            conn.execute(
                "INSERT INTO settlement_batch (run_id, account, currency, period_kind,"
                " period_start, period_end, settlement_tz, state, watermark, prior_watermark,"
                " postings, late_postings, debit_total, credit_total, rounding, late_net,"
                " checksum, checksum_version) VALUES (%s, 'partner:NL*TNM', 'EUR', 'MONTHLY',"
                " %s, %s, 'UTC', 'CLOSING', %s, %s, 1, 0, 0, 1, 0, 0, repeat('0', 64), 1)",
                (
                    link["run_id"],
                    at("2025-07-01"),
                    at("2025-08-01"),
                    link["watermark"],
                    link["watermark"],
                ),
            )
            with pytest.raises(psycopg.errors.IntegrityError, match="would close unsealed"):
                conn.execute(
                    "UPDATE settlement_batch SET state = 'CLOSED', closed_at = now()"
                    " WHERE period_start = %s",
                    (at("2025-07-01"),),
                )
    assert old.matches and old.seal_status is SealStatus.UNSEALED
    assert old.checksum_version == CHECKSUM_V1
    assert new.matches and new.seal_status is SealStatus.VALID
    assert link["seal_link"] == f"v1:{old.stored_checksum}"
