"""`roamclear status` over a real broker and PostgreSQL: the clearing group's lag from its
committed offsets and the fetch high watermarks, a record pending, a rejection of the last
hour, open and closed batches, a dead delivery and a missing CDR, all in one read; and the
command's JSON and table."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.config import Settings
from pipeline.status import current_status
from pipeline.topics import CDR_PARTITIONS
from settlement.batches.model import ClosePolicy
from settlement.clearing.reasons import Reason
from settlement.sessions.missing import FindingKind
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.status import StoreStatus
from tests.integration.clearing.helpers import cdr_dict, envelope, submit
from tests.integration.clearing.test_batch import _clear
from tests.integration.ocpi.sessions import session_doc
from tests.integration.sessions.helpers import key_of, produce_sessions, session_event, store
from tests.integration.settlement.factories import SEAL_KEY, at, book

pytestmark = pytest.mark.integration
REASON = Reason.UNAUTHENTICATED_SUBMITTER.value  # a record without the hub's proof


async def _commit(settings: Settings, offsets: dict[TopicPartition, int]) -> None:
    """Commit as the clearing group does after a batch (faust: OffsetCommit)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def _scenario(settings: Settings, now: datetime) -> None:
    assert settings.database_url
    forged, _pending = submit(  # no hub proof: the first is rejected when cleared
        settings,
        [(b"NL*TNM*F", envelope(cdr_dict(2))), (b"NL*TNM*P", envelope(cdr_dict(1)))],
        sign=False,
    )
    assert asyncio.run(_clear(settings, [forged])).outcomes == {"rejected": 1}  # one pending
    committed = {TopicPartition(forged.topic, forged.partition): forged.offset + 1}
    asyncio.run(_commit(settings, committed))
    ended = (now - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    session = session_doc("SES-NO-CDR", status="COMPLETED", start_date_time=ended,
                          end_date_time=ended, last_updated=ended)  # fmt: skip
    store(settings, produce_sessions(settings, [(key_of(session), session_event(session, ended))]))
    with connect(settings.database_url) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000", end=at("2025-05-10 12:00"))
        conn.commit()
    policy = ClosePolicy(time_zone="UTC", grace=timedelta(hours=1))
    close_once(settings.database_url, at("2025-06-02 00:00"), policy, SEAL_KEY)
    with connect(settings.database_url) as conn:
        late = book(conn, "NL*TNM", "DE*EMS", "7.0000", fee="0.1000", end=at("2025-06-03 09:00"))
        conn.execute(
            "INSERT INTO cdr_delivery (transaction_id, kind, cdr_key, cpo, emsp, document,"
            " correlation_id, last_updated, state) VALUES (%s, 'CHARGE', 'NL*TNM*L', 'NL*TNM',"
            " 'DE*EMS', '{}', 'corr-1', now(), 'DEAD')",
            (late,),
        )
        conn.commit()


def _check(store_status: StoreStatus) -> None:
    assert store_status.clearing["pending"] == 1 and store_status.clearing["rejected"] == 1
    ((_, reason, count),) = store_status.rejections
    assert (reason, count) == (REASON, 1)
    # after the close: the June posting is open for both partners, May is in their batches
    open_by_partner = {p.partner: p for p in store_status.open_positions}
    assert set(open_by_partner) == {"NL*TNM", "DE*EMS"}
    assert open_by_partner["DE*EMS"].postings == 1
    assert open_by_partner["DE*EMS"].net_amount == Decimal("-7.0000")
    assert open_by_partner["NL*TNM"].net_amount == Decimal("6.9000")  # 7.00 less the fee
    assert {b.partner for b in store_status.closed_batches} == {"NL*TNM", "DE*EMS"}
    assert [run.state for run in store_status.last_runs] == ["CLOSED"]
    assert store_status.dead_deliveries == {"DE*EMS": 1}
    assert store_status.missing(FindingKind.MISSING_CDR) == 1


def test_status_reads_lag_and_the_books_in_one_go(fresh_settings: Settings) -> None:
    settings = replace(fresh_settings, app_id=f"status-{uuid.uuid4().hex[:8]}")
    now = datetime.now(UTC)
    _scenario(settings, now)

    found = current_status(settings)
    _check(found.store)
    assert len(found.lags) == 2 * CDR_PARTITIONS  # cdr.submitted and session.events
    (committed,) = [item for item in found.lags if item.committed is not None]
    assert committed.committed == committed.high_watermark and committed.records == 0
    assert sum(item.records for item in found.lags) == 2  # the pending CDR and the session

    assert settings.database_url and settings.kafka_bootstrap_servers
    env = {
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
        "ROAMCLEAR_APP_ID": settings.app_id,
        "ROAMCLEAR_HOME": str(settings.home),
    }
    result = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["lag_total"] == 2 and document["missing_cdrs"] == 1
    assert document["open_batches"][0]["net_amount"] in ("-7.0000", "6.9000")  # strings
    ((rejection),) = document["rejections_last_hour"]
    assert (rejection["reason"], rejection["count"]) == (REASON, 1)
    table = CliRunner().invoke(app, ["status"], env={**env, "COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for shown in ("records pending: 1 of 2", REASON, "dead deliveries: DE*EMS 1",
                  "missing CDRs: 1", "last closed run"):  # fmt: skip
        assert shown in table.output, table.output
