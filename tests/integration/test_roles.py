"""Each component's PostgreSQL role can do its job and nothing that would let it rewrite the
books: no UPDATE, DELETE or TRUNCATE on what it appends, no trigger changes, no
`session_replication_role` (which would silence every guard)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import psycopg
import pytest

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from settlement.batches.model import ClosePolicy
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.statements import verify
from tests.integration.settlement.factories import SEAL_KEY, TEST_KEYS, at, book

pytestmark = pytest.mark.integration

DENIED: Final = (psycopg.errors.InsufficientPrivilege,)

# What no component role may do, whoever it is.
FORBIDDEN: Final = (
    "UPDATE ledger_posting SET amount = amount",
    "DELETE FROM ledger_transaction",
    "TRUNCATE cdr_outcome",
    "TRUNCATE rejection CASCADE",
    "ALTER TABLE ledger_posting DISABLE TRIGGER ALL",
    "DROP TRIGGER ledger_posting_append_only ON ledger_posting",
    "SET session_replication_role = replica",
    "LOCK TABLE ledger_posting IN SHARE ROW EXCLUSIVE MODE",
    "UPDATE settlement_run SET error = 'x'",
    "CREATE TABLE shadow_ledger (id int)",
    "UPDATE ocpi_cdr_receipt SET body = body",
    "DELETE FROM ocpi_cdr_published",
    "DELETE FROM dispute_transition",
    "UPDATE dispute SET claimed_amount = 0",  # what was disputed: no role may change it
)

OPEN_DISPUTE: Final = (
    "INSERT INTO dispute (cdr_key, opened_by, reason, claimed_amount, currency, state, "
    "transitions) VALUES ('K', 'NL*TNM', 'OTHER', 1, 'EUR', 'open', 1)"
)

# Per role: one thing it must be able to do, and writes outside its job.
MAY: Final = {
    DbRole.WORKER: "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('t', 0, 0)",
    DbRole.CLOSER: "SELECT settlement_lock_postings()",
    DbRole.API: "SELECT count(*) FROM settlement_batch, finance_api_token, ocpi_token",
    DbRole.READER: "SELECT count(*) FROM ledger_posting, finance_api_token",
    DbRole.OPERATOR: "INSERT INTO partner_version (party_ref, version, role, name) "
    "VALUES ('NL*ROL', 1, 'CPO', 'roles test')",
    DbRole.DELIVERER: "SELECT count(*) FROM ledger_transaction, raw_event, cdr_delivery, "
    "cdr_delivery_attempt, ocpi_connection_current",
}
MAY_NOT: Final = {
    DbRole.WORKER: (
        OPEN_DISPUTE,  # the operator's and the API's only
        'INSERT INTO ocpi_cdr_published (topic, partition, "offset", receipt_id, event_id) '
        "VALUES ('t', 0, 0, gen_random_uuid(), gen_random_uuid())",
        "INSERT INTO partner_version (party_ref, version, role, name) "
        "VALUES ('NL*ROL', 1, 'CPO', 'x')",
        "INSERT INTO partner_key_revocation (key_id, revoked_at) VALUES ('pk-000000000000', now())",
        "SELECT * FROM finance_api_token",
        "INSERT INTO settlement_run (as_of, settlement_tz, grace, state) "
        "VALUES (now(), 'UTC', '1h', 'FAILED')",
        "INSERT INTO session_push (partner, method, url_country_code, url_party_id, "
        "url_session_id, request_id, correlation_id, body, outcome, http_status, status_code, "
        "reason_code) VALUES ('NL*TNM', 'PUT', 'NL', 'TNM', 'S', 'r', 'c', '', 'REJECTED', 400, "
        "2001, 'malformed_json')",
    ),
    DbRole.CLOSER: (
        OPEN_DISPUTE,  # the operator's and the API's only
        "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('t', 0, 0)",
        "INSERT INTO cdr_outcome (archive_id, outcome) VALUES (1, 'REJECTED')",
        "INSERT INTO tariff_version (tariff_key, cpo, tariff_id, last_updated, content_hash, "
        "currency, body) VALUES ('k', 'NL*X', 'T', now(), 'h', 'EUR', '{}')",
    ),
    DbRole.API: (
        "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('t', 0, 0)",
        # reference data partners push over OCPI, yes; the hub's own agreements, no
        "INSERT INTO agreement_version (agreement_id, version, cpo, currency, valid_from, body) "
        "VALUES ('A', 1, 'NL*X', 'EUR', now(), '{}')",
        # rejections at the door have no archived record and no outcome: the worker's alone
        "INSERT INTO cdr_outcome (archive_id, outcome) VALUES (1, 'REJECTED')",
        "INSERT INTO finance_api_token (token_hash, scope) VALUES (repeat('0', 64), 'FINANCE')",
        "INSERT INTO partner_key_revocation (key_id, revoked_at) VALUES ('pk-000000000000', now())",
        "SELECT settlement_lock_postings()",
        "INSERT INTO cdr_session (archive_id, session_key, cdr_key) VALUES (1, 'K', 'C')",
        "INSERT INTO session_version (archive_id, event_id, session_key, cpo, emsp, session_id, "
        "status, start_date_time, kwh, currency, last_updated, occurred_at, submitter, proof, "
        "body) VALUES (1, gen_random_uuid(), 'K', 'NL*TNM', 'DE*EMP', 'S', 'ACTIVE', now(), 0, "
        "'EUR', now(), now(), 'NL*TNM', 'hub-000000000000', '{}')",
    ),
    DbRole.READER: (
        OPEN_DISPUTE,  # the operator's and the API's only
        "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('t', 0, 0)",
        "INSERT INTO ocpi_connection (partner, event, initiated_by, request_id, correlation_id)"
        " VALUES ('NL*ROL', 'UNREGISTERED', 'HUB', 'r', 'c')",
        "INSERT INTO tariff_lifecycle (tariff_key, cpo, tariff_id, event, at) "
        "VALUES ('K', 'NL*X', 'T', 'DELETED', now())",
        "INSERT INTO finance_api_token (token_hash, scope) VALUES (repeat('0', 64), 'FINANCE')",
        "SELECT settlement_lock_postings()",
    ),
    DbRole.OPERATOR: (
        "INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash, currency, "
        "cpo, emsp, session_start, session_end, energy_kwh, amount_excl_vat, amount_incl_vat, "
        "fee, rating) VALUES (gen_random_uuid(), 'K', 'CHARGE', 'h', 'EUR', 'A', 'B', now(), "
        "now(), 0, 0, 0, 0, '{}')",
        "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('t', 0, 0)",
        # it re-queues dead deliveries; it cannot mark one delivered or rewrite what was sent
        "UPDATE cdr_delivery SET request_id = 'r'",
        "UPDATE cdr_delivery SET document = 'x'",
    ),
    DbRole.DELIVERER: (
        OPEN_DISPUTE,  # the operator's and the API's only
        "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('t', 0, 0)",
        "INSERT INTO ledger_posting (transaction_id, account, side, amount, currency, "
        "value_time, settlement_period) VALUES (gen_random_uuid(), 'hub:fees', 'DEBIT', 1, "
        "'EUR', now(), 'MONTHLY')",
        "SELECT * FROM finance_api_token",
        "SELECT * FROM ocpi_token",
        "INSERT INTO ocpi_connection (partner, event, initiated_by, request_id, correlation_id)"
        " VALUES ('NL*ROL', 'UNREGISTERED', 'HUB', 'r', 'c')",
    ),
}


@pytest.mark.parametrize("role", list(DbRole))
def test_a_role_does_its_job_and_cannot_rewrite_the_books(
    fresh_settings: Settings, role: DbRole
) -> None:
    with psycopg.connect(role_url(fresh_settings, role)) as conn:
        user = conn.execute(
            "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user"
        )
        assert user.fetchone() == (role.value, False)
        with conn.transaction(force_rollback=True):
            conn.execute(MAY[role])
        for statement in (*FORBIDDEN, *MAY_NOT[role]):
            with pytest.raises(DENIED), conn.transaction():
                conn.execute(statement)


def test_the_owner_role_cannot_log_in_and_owns_the_schema(fresh_settings: Settings) -> None:
    assert fresh_settings.database_url
    with psycopg.connect(fresh_settings.database_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') "
            "AND c.relname NOT LIKE '%yoyo%'"
        ).fetchall()
        login = conn.execute(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'roamclear_owner'"
        ).fetchone()
    assert owners == [("roamclear_owner",)]
    assert login == (False,)


def test_the_closer_role_closes_and_seals_and_the_reader_verifies(fresh_settings: Settings) -> None:
    assert fresh_settings.database_url
    with psycopg.connect(fresh_settings.database_url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0001", end=at("2025-05-10 12:00"))
        conn.commit()
    report = close_once(
        role_url(fresh_settings, DbRole.CLOSER),
        at("2025-06-02 00:00"),
        ClosePolicy(time_zone="UTC", grace=timedelta(hours=1)),
        SEAL_KEY,
    )
    assert len(report.batches) == 2
    with connect(role_url(fresh_settings, DbRole.READER)) as conn:
        for batch in report.batches:
            assert verify(conn, batch.batch_id, TEST_KEYS).matches
