"""Every table in the schema and the rule it lives by, held against PostgreSQL itself: a
table added without a rule fails here, and no append-only table can be changed, deleted
from or emptied, by a batch's own role or by anyone short of dropping triggers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Final

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipeline.config import Settings
from schemas.hub.party import PartyRef
from settlement.clearing.reasons import Reason
from settlement.keys import HubKey, HubKeyring
from settlement.partner_tokens import seal
from settlement.store import (
    books,
    ocpi_cdrs,
    ocpi_connections,
    ocpi_receipts,
    ocpi_tokens,
    partner_keys,
    reference_store,
    session_pushes,
)
from settlement.store.db import connect, connect_async
from tests.integration.clearing.helpers import mixed_batch, register_reference_data, submit
from tests.integration.clearing.test_batch import _clear
from tests.integration.ocpi.receipts import receipt
from tests.integration.ocpi.sessions import session_doc
from tests.integration.sessions.helpers import key_of, produce_sessions, session_event, store

pytestmark = pytest.mark.integration

APPEND_ONLY: Final = "append-only"  # INSERT only: UPDATE, DELETE and TRUNCATE refused
STATE_MACHINE: Final = "guarded state machine"  # transitions checked; CLOSED final
MIGRATIONS: Final = "migration tool"  # yoyo's own bookkeeping
QUEUE: Final = "work queue"  # rows leave once their work is done (cdr_delivery_waiting)

RULES: Final = {
    "raw_event": APPEND_ONLY,
    "partner_version": APPEND_ONLY,
    "tariff_version": APPEND_ONLY,
    "location_version": APPEND_ONLY,
    "agreement_version": APPEND_ONLY,
    "partner_key": APPEND_ONLY,
    "partner_key_revocation": APPEND_ONLY,
    "ledger_transaction": APPEND_ONLY,
    "ledger_posting": APPEND_ONLY,
    "rejection": APPEND_ONLY,
    "rejection_retry": APPEND_ONLY,
    "cdr_outcome": APPEND_ONLY,
    "settlement_run": APPEND_ONLY,
    "settlement_batch": STATE_MACHINE,
    "finance_api_token": APPEND_ONLY,
    "finance_api_token_revocation": APPEND_ONLY,
    "ocpi_token": APPEND_ONLY,
    "ocpi_token_revocation": APPEND_ONLY,
    "ocpi_connection": APPEND_ONLY,
    "tariff_lifecycle": APPEND_ONLY,
    "location_zone": APPEND_ONLY,
    "ocpi_reference_receipt": APPEND_ONLY,
    "session_push": APPEND_ONLY,
    "session_version": APPEND_ONLY,
    "cdr_session": APPEND_ONLY,
    "ocpi_cdr_receipt": APPEND_ONLY,
    "ocpi_cdr_published": APPEND_ONLY,
    # a delivery moves PENDING/RETRYING -> DELIVERED | DEAD (trigger cdr_delivery_guard: what
    # is delivered never changes, DELIVERED and PULL are final); an attempt is finished once
    "cdr_delivery": STATE_MACHINE,
    "cdr_delivery_attempt": STATE_MACHINE,
    "cdr_delivery_waiting": QUEUE,
    "partner_liveness": APPEND_ONLY,
    "client_info_push": APPEND_ONLY,
    # a dispute moves open -> accepted | declined | withdrawn | written_off (trigger
    # dispute_guard: only with its history row; what was disputed never changes)
    "dispute": STATE_MACHINE,
    "dispute_transition": APPEND_ONLY,
    # an applied replay run and what it booked (migration 0020)
    "replay_run": APPEND_ONLY,
    "replay_correction": APPEND_ONLY,
    "_yoyo_log": MIGRATIONS,
    "_yoyo_migration": MIGRATIONS,
    "_yoyo_version": MIGRATIONS,
    "yoyo_lock": MIGRATIONS,
}


def _connect(conn: psycopg.Connection[dict[str, object]], hub_token_hash: str) -> None:
    """An OCPI connection row (what a credentials handshake records)."""
    ocpi_connections.record(
        conn,
        PartyRef.parse("NL*TNM"),
        ocpi_connections.ConnectionEvent.REGISTERED,
        ocpi_connections.Initiator.PARTNER,
        ocpi_connections.RequestIds("req", "corr"),
        ocpi_connections.Registration(
            version="2.2.1",
            versions_url="https://p.example/versions",
            version_url="https://p.example/2.2.1",
            endpoints=(),
            roles=(),
            partner_token=seal(HubKeyring(HubKey.from_secret(b"t" * 32)), "NL*TNM", "b"),
            token_unencoded=False,
            hub_token_hash=hub_token_hash,
        ),
    )


def _tables(conn: psycopg.Connection[dict[str, object]]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    ).fetchall()
    return {str(row["relname"]) for row in rows}


def _guards(conn: psycopg.Connection[dict[str, object]], table: str) -> set[str]:
    """The operations refused by a `refuse_change()` trigger on the table."""
    rows = conn.execute(
        "SELECT t.tgtype FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = to_regclass(%s) AND p.proname = 'refuse_change' AND t.tgenabled <> 'D'",
        (table,),
    ).fetchall()
    refused: set[str] = set()
    for row in rows:
        kind = int(str(row["tgtype"]))
        # pg_trigger.tgtype bits: 1 row, 2 before, 8 delete, 16 update, 32 truncate
        if kind & 2 and kind & 1:
            refused |= {name for bit, name in ((8, "DELETE"), (16, "UPDATE")) if kind & bit}
        if kind & 2 and kind & 32:
            refused.add("TRUNCATE")
    return refused


def test_every_table_has_a_rule(database_url: str) -> None:
    with connect(database_url) as conn:
        tables = _tables(conn)
    unruled = tables - set(RULES)
    assert not unruled, f"tables without a rule in {__name__}.RULES: {sorted(unruled)}"
    assert set(RULES) <= tables, f"rules for tables that are gone: {sorted(set(RULES) - tables)}"


@pytest.mark.parametrize("table", [t for t, rule in RULES.items() if rule == APPEND_ONLY])
def test_append_only_tables_refuse_update_delete_and_truncate(
    database_url: str, table: str
) -> None:
    with connect(database_url) as conn:
        assert _guards(conn, table) == {"UPDATE", "DELETE", "TRUNCATE"}
        # TRUNCATE is a statement trigger: it fires on an empty table too
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
            conn.execute(f"TRUNCATE {table} CASCADE")


async def _receipts(database_url: str, token_hash: str) -> None:
    """One accepted CDR receipt with its topic position, and one refused at the door."""

    def receipt(outcome: ocpi_cdrs.Outcome, **fields: object) -> ocpi_cdrs.Receipt:
        return ocpi_cdrs.Receipt(
            receipt_id=uuid.uuid4(), partner=PartyRef.parse("NL*TNM"), token_hash=token_hash,
            cdr_key="NL*TNM*R1", body=b"{}", body_bytes=2, request_id="r",
            correlation_id="c", outcome=outcome, **fields,  # type: ignore[arg-type]
        )  # fmt: skip

    conn = await connect_async(database_url, autocommit=True)
    try:
        accepted = receipt(ocpi_cdrs.Outcome.ACCEPTED)
        assert await ocpi_cdrs.claim(conn, [accepted]) == {accepted.receipt_id}
        refusal = ocpi_cdrs.Refusal(Reason.MALFORMED_JSON, "not JSON")
        refused = receipt(ocpi_cdrs.Outcome.REJECTED, refusal=refusal)
        await ocpi_cdrs.record(conn, [refused])
        await ocpi_cdrs.record_published(
            conn, [ocpi_cdrs.Published(accepted.receipt_id, "t", 0, 0, uuid.uuid4())]
        )
    finally:
        await conn.close()


def test_the_books_refuse_changes_to_rows_they_hold(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url
    register_reference_data(settings)
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    records, _ = mixed_batch()
    asyncio.run(_clear(settings, submit(settings, records)))  # links CDRs to sessions too
    session = session_doc()
    store(settings, produce_sessions(settings, [(key_of(session), session_event(session))]))
    with connect(settings.database_url) as conn:
        session_pushes.record(
            conn,
            session_pushes.Push(
                "NL*TNM", "PUT", ("NL", "TNM", "S"), None, "r", "c", b"{", False, 400, 2001,
                "malformed_json", "not JSON",
            ),
        )  # fmt: skip
        key_id = partner_keys.add_key(conn, PartyRef.parse("NL*TNM"), raw)
        token = ocpi_tokens.issue(conn, PartyRef.parse("NL*TNM"), ocpi_tokens.TokenKind.A)
        ocpi_tokens.revoke(conn, ocpi_tokens.token_hash(token))
        _connect(conn, ocpi_tokens.token_hash(token))
        conn.commit()
        asyncio.run(_receipts(settings.database_url, ocpi_tokens.token_hash(token)))
        partner_keys.revoke_key(conn, key_id)
        (first,) = books.rejections(conn, limit=1)
        books.record_retry(conn, first["rejection_id"], "00000000-0000-4000-8000-000000000000")
        tnm = PartyRef.parse("NL*TNM")
        reference_store.delete_tariff(conn, tnm, "AC-STANDARD", datetime.now(UTC))
        ocpi_receipts.record(conn, receipt(tnm))
        conn.execute(
            "INSERT INTO partner_liveness (partner, reachable, url, error) "
            "VALUES ('NL*TNM', false, 'https://p.example/versions', 'HTTP 503')"
        )
        conn.execute(
            "INSERT INTO client_info_push (receiver, subject, status, last_updated, request_id)"
            " VALUES ('DE*EMP', 'NL*TNM', 'PLANNED', now(), 'r')"
        )
        conn.commit()
        # settlement_run: the closer's (test_invariants_db); tokens: the finance API's;
        # dispute_transition: settlement/test_disputes_db; replay_*: replay/test_replay
        populated = [
            t
            for t, rule in RULES.items()
            if rule == APPEND_ONLY
            and t
            not in {
                "settlement_run",
                "finance_api_token",
                "finance_api_token_revocation",
                "dispute_transition",
                "replay_run",
                "replay_correction",
            }
        ]
        for table in populated:
            assert conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] > 0, table
            with pytest.raises(psycopg.Error, match="append-only"), conn.transaction():
                conn.execute(f"DELETE FROM {table}")
            column = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum = 1",
                (table,),
            ).fetchone()["attname"]
            with pytest.raises(psycopg.Error, match="append-only"), conn.transaction():
                conn.execute(f'UPDATE {table} SET "{column}" = "{column}"')
