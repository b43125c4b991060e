"""A clearing batch against the real PostgreSQL and broker: exact books, idempotent replay."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from pipeline.clearing.batch import BatchResult, Clearing, process_batch, send_with
from pipeline.clearing.events import EventWriter
from pipeline.clearing.refcache import ReferenceCache
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.hubkeys import load_hub_keyring, record_proof_keys
from pipeline.kafka.client import new_producer, read_from_beginning
from pipeline.topics import Topic, topic_name
from schemas.events import LedgerTransaction, RejectedEvent, parse_envelope
from schemas.hub.party import PartyRef
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.store import books
from settlement.store.clearing_store import SubmittedRecord, prepare
from settlement.store.db import connect, connect_async
from tests.integration.clearing.helpers import mixed_batch, register_reference_data, submit

pytestmark = pytest.mark.integration


async def _clear(settings: Settings, records: list[SubmittedRecord]) -> BatchResult:
    assert settings.database_url and settings.kafka_bootstrap_servers
    conn = await connect_async(role_url(settings, DbRole.WORKER))  # as `roamclear worker`
    await prepare(conn)
    producer = new_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        writer = EventWriter(settings.topic_prefix, PartyRef.parse("ZZ*HUB"))

        async def send(out: object) -> None:
            await send_with(producer, out)  # type: ignore[arg-type]

        keys = record_proof_keys(load_hub_keyring(settings))
        clearing = Clearing(ReferenceCache(), PlausibilityLimits(), writer, send, keys)
        return await process_batch(conn, records, clearing)
    finally:
        await producer.stop()
        await conn.close()


def test_mixed_batch_books_exactly_and_replays_idempotently(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url and settings.kafka_bootstrap_servers
    register_reference_data(settings)
    raw, expected = mixed_batch()
    records = submit(settings, raw)

    result = asyncio.run(_clear(settings, records))
    assert result.skipped == 0
    assert result.outcomes == Counter(
        {
            "booked": expected.ledgered,
            "duplicate": expected.duplicates,
            "rejected": sum(expected.rejected.values()),
        }
    )

    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    with connect(settings.database_url) as conn:
        counts = books.counts(conn, topic, len(raw))
        assert counts == {
            "submitted": len(raw),
            "ledgered": expected.ledgered,
            "rejected": sum(expected.rejected.values()),
            "duplicates": expected.duplicates,
            "pending": 0,
        }
        reasons = Counter(r["reason_code"] for r in books.rejections(conn))
        assert reasons == Counter(expected.rejected)
        balances = {(b["account"]): b["balance"] for b in books.balances(conn)}
        # CDR 0 was charged and reversed; CDRs 1 and 2 stand (see test_decide for the fees)
        assert balances == {
            "partner:DE*EMP": Decimal("-4.2108"),
            "partner:BE*EVB": Decimal("-14.2478"),
            "partner:NL*TNM": Decimal("18.2298"),
            "hub:fees": Decimal("0.2288"),
        }
        assert sum(balances.values()) == 0
        reversal = books.transactions_of_cdr(conn, "NL*TNM*CDR-2026-0001")
        assert [t["kind"] for t in reversal] == ["CHARGE", "REVERSAL"]

    # the events went out, re-keyed by the canonical CDR key
    out = asyncio.run(
        read_from_beginning(
            settings.kafka_bootstrap_servers,
            topic_name(settings.topic_prefix, Topic.LEDGER_TRANSACTIONS),
            expected.ledgered,
        )
    )
    assert len(out) == expected.ledgered
    assert all(isinstance(parse_envelope(r.value or b""), LedgerTransaction) for r in out)
    rejected = asyncio.run(
        read_from_beginning(
            settings.kafka_bootstrap_servers,
            topic_name(settings.topic_prefix, Topic.REJECTED),
            sum(expected.rejected.values()),
        )
    )
    dead = [parse_envelope(r.value or b"") for r in rejected]
    assert all(isinstance(d, RejectedEvent) for d in dead)
    malformed = [
        d
        for d in dead
        if isinstance(d, RejectedEvent) and d.rejection.reason_code == "malformed_json"
    ]
    assert malformed[0].rejection.original_payload == '{"event_id": "1", "cdr": {'

    # redelivery of the whole batch (a crash before the offsets were committed) changes nothing
    again = asyncio.run(_clear(settings, records))
    assert again.skipped == len(records) and not again.outcomes
    with connect(settings.database_url) as conn:
        assert books.counts(conn, topic, len(raw))["ledgered"] == expected.ledgered
        assert {(b["account"]): b["balance"] for b in books.balances(conn)} == balances


def test_the_database_refuses_an_unbalanced_transaction(fresh_database_url: str) -> None:
    import psycopg

    with connect(fresh_database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash, currency,"
            " cpo, emsp, session_start, session_end, energy_kwh, amount_excl_vat, amount_incl_vat,"
            " fee, rating) VALUES ('00000000-0000-0000-0000-000000000001', 'NL*TNM*X', 'CHARGE',"
            " 'h', 'EUR', 'NL*TNM', 'DE*EMP', now(), now(), 1, 1, 1, 0, '{}')"
        )
        conn.execute(
            "INSERT INTO ledger_posting (transaction_id, account, side, amount, currency,"
            " value_time, settlement_period) VALUES"
            " ('00000000-0000-0000-0000-000000000001', 'partner:DE*EMP', 'DEBIT', 1, 'EUR', now(),"
            " 'MONTHLY'), ('00000000-0000-0000-0000-000000000001', 'partner:NL*TNM', 'CREDIT',"
            " 0.99, 'EUR', now(), 'MONTHLY')"
        )
        conn.commit()


def test_booked_rows_are_append_only(fresh_settings: Settings) -> None:
    import psycopg

    settings = fresh_settings
    assert settings.database_url
    register_reference_data(settings)
    raw, _ = mixed_batch()
    asyncio.run(_clear(settings, submit(settings, raw[:1])))
    with connect(settings.database_url) as conn:
        for statement in (
            "UPDATE ledger_posting SET amount = amount + 1",
            "DELETE FROM ledger_transaction",
            "UPDATE raw_event SET value = NULL",
            "DELETE FROM cdr_outcome",
        ):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
                conn.execute(statement)
            conn.rollback()
