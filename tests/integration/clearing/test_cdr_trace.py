"""`roamclear trace` through the real path: CDRs posted over OCPI HTTP and produced to
cdr.submitted, cleared by the clearing batch, delivered by the delivery intake, settled by
the closer; then each CDR's trace read from PostgreSQL (as `roamclear_reader`), printed by
the CLI, and served over real HTTP with its partner isolation, disputes included (a partner
sees the disputes it opened, as over the disputes API)."""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from pipeline.api.tokens import create_token
from pipeline.cli.main import app as cli
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.delivery import intake
from pipeline.hubkeys import load_seal_keys
from pipeline.kafka.client import read_from_beginning, records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.hub.party import CdrKey, PartyRef
from schemas.wire import encode_json
from settlement.batches.model import ClosePolicy
from settlement.cdr_trace import BreakdownSource, CdrTrace
from settlement.disputes import HUB, Action
from settlement.store import disputes, ocpi_tokens
from settlement.store.closing import close_once
from settlement.store.db import connect, connect_async
from settlement.store.statements import load_statement
from settlement.store.trace import TraceNotFound, read_trace
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    mixed_batch,
    register_reference_data,
    submit,
    topic_records,
)
from tests.integration.clearing.test_batch import _clear
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration

CDR_0, CDR_1, CDR_2 = (f"NL*TNM*CDR-2026-000{i}" for i in (1, 2, 3))
REQUEST_ID, CORRELATION_ID = "trace-request-1", "trace-correlation-1"


def _deliver(settings: Settings) -> None:
    """The delivery intake takes what cdr.rated and ledger.transactions announce."""
    assert settings.kafka_bootstrap_servers
    values = []
    for topic in (Topic.CDR_RATED, Topic.LEDGER_TRANSACTIONS):
        name = topic_name(settings.topic_prefix, topic)
        count = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, name))
        read = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, name, count))
        values += [r.value for r in read]
    events = [event for value in values if (event := intake.announced(value)) is not None]

    async def take() -> int:
        conn = await connect_async(role_url(settings, DbRole.DELIVERER))
        try:
            return await intake.take(conn, events)
        finally:
            await conn.close()

    assert asyncio.run(take()) == 4  # the three charges and the reversal


def _book_everything(settings: Settings, url: str, ocpi_token: str) -> None:
    """CDR_2 over OCPI HTTP, cleared; then the mixed batch (CDR_2 again: a duplicate)."""
    auth = base64.b64encode(ocpi_token.encode()).decode()
    answer = httpx.post(
        f"{url}/ocpi/2.2.1/cdrs",
        content=encode_json(cdr_dict(2)).encode(),
        headers={
            "Authorization": f"Token {auth}",
            "X-Request-ID": REQUEST_ID,
            "X-Correlation-ID": CORRELATION_ID,
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    over_http = topic_records(settings)
    asyncio.run(_clear(settings, over_http))
    raw, _ = mixed_batch()
    # NL*ABC submits NL*TNM's CDR: rejected not_owner, a record a partner's view leaves out
    raw.append((CDR_0.encode(), envelope(cdr_dict(0), "NL*ABC")))
    submit(settings, raw)
    cleared = {(r.partition, r.offset) for r in over_http}
    rest = [r for r in topic_records(settings) if (r.partition, r.offset) not in cleared]
    assert len(rest) == len(raw)
    asyncio.run(_clear(settings, rest))


def _check_charge_and_credit(trace: CdrTrace, settings: Settings) -> None:
    outcomes = [(r.outcome.outcome, r.outcome.reason_code) for r in trace.records]
    assert outcomes == [
        ("LEDGERED", None),
        ("DUPLICATE", None),
        ("LEDGERED", None),
        ("REJECTED", "not_owner"),
    ]
    assert trace.records[3].claimed_submitter == "NL*ABC"
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    positions = {(r.partition, r.offset) for r in topic_records(settings)}
    for record in trace.records:
        assert record.topic == topic and (record.partition, record.offset) in positions
        assert record.broker_time is not None and record.http is None
        assert (record.proof or "")[:4] == "hub-"
    assert [r.authenticated_submitter for r in trace.records] == ["NL*TNM"] * 3 + ["NL*ABC"]
    charge, reversal = trace.transactions
    assert (charge.kind, reversal.kind) == ("CHARGE", "REVERSAL")
    assert reversal.reverses == charge.transaction_id == trace.records[1].outcome.transaction_id
    assert charge.reversed_by == reversal.transaction_id == trace.records[2].outcome.transaction_id
    assert reversal.cdr_key == f"{CDR_0}-CR" and trace.emsp == "DE*EMP"
    for transaction in trace.transactions:
        assert transaction.postings and set(transaction.imbalance().values()) == {Decimal(0)}
        for posting in transaction.postings:
            on_statement = posting.account.startswith("partner:")
            assert (posting.statement is not None) == on_statement, posting
    assert {(d.kind, d.state, d.emsp) for d in trace.deliveries} == {
        ("CHARGE", "PULL", "DE*EMP"),
        ("REVERSAL", "PULL", "DE*EMP"),
    }


def _check_pricing(trace: CdrTrace, settings: Settings) -> None:
    pricing = trace.pricing
    assert pricing is not None
    tariff = pricing.tariff
    assert settings.database_url
    with connect(settings.database_url) as conn:
        stored = conn.execute(
            "SELECT tariff_key, last_updated FROM tariff_version WHERE content_hash = %s",
            (tariff.content_hash,),
        ).fetchall()
    assert stored == [{"tariff_key": tariff.tariff_key, "last_updated": tariff.last_updated}]
    assert tariff.stored and pricing.location.time_zone == "Europe/Amsterdam"
    assert (pricing.agreement.agreement_id, pricing.agreement.version) == ("TNM-DEFAULT", 1)
    assert (pricing.agreement.rounding_mode, pricing.agreement.rounding_decimals) == ("HALF_UP", 4)
    assert pricing.totals.declared_excl_vat == Decimal("7.25")
    breakdown = pricing.breakdown
    assert breakdown.source is BreakdownSource.RE_RATED and breakdown.matches_booking is True
    assert breakdown.rated is not None
    periods_excl = sum(c.cost.excl_vat for p in breakdown.rated.periods for c in p.charges)
    assert periods_excl.quantize(Decimal("0.0001")) == pricing.totals.computed_excl_vat


def _traces(settings: Settings) -> dict[str, CdrTrace]:
    with connect(role_url(settings, DbRole.READER)) as conn:
        traces = {key: read_trace(conn, CdrKey.parse(key)) for key in (CDR_0, CDR_1, CDR_2)}
        traces["no-tariff"] = read_trace(conn, CdrKey.parse("nl*tnm*cdr-no-tariff"))
        traces["credit"] = read_trace(conn, CdrKey.parse(f"{CDR_0}-CR"))
        with pytest.raises(TraceNotFound, match="NL\\*TNM\\*NOPE-NEVER"):
            read_trace(conn, CdrKey.parse("NL*TNM*NOPE-NEVER"))
    return traces


def _check_credit_on_its_statement(settings: Settings, trace: CdrTrace) -> None:
    """The charge and its credit (as clearing books them: the REVERSAL's amounts negative)
    on DE*EMP's closed statement: they cancel in the gross, the fees and the VAT."""
    (statement_id,) = {
        p.statement.statement_id
        for t in trace.transactions
        for p in t.postings
        if p.statement is not None and p.account == "partner:DE*EMP"
    }
    with connect(role_url(settings, DbRole.READER)) as conn:
        statement = load_statement(conn, statement_id)
    ours = [line for line in statement.lines if line.cdr_key.startswith(CDR_0)]
    assert sorted((line.kind.value, line.fee_paid) for line in ours) == [
        ("CHARGE", 0),
        ("REVERSAL", 0),
    ]
    assert sum(line.amount_incl_vat for line in ours) == 0
    assert sum(p.incl_vat for line in ours for p in line.vat_breakdown) == 0
    others = [line for line in statement.lines if not line.cdr_key.startswith(CDR_0)]
    assert statement.totals.payable_as_emsp == sum(line.amount_incl_vat for line in others)


def _dispute_cdr_1(settings: Settings) -> tuple[int, int]:
    """BE*EVB, CDR_1's eMSP, disputes it and the hub accepts by an adjustment; its CPO's own
    dispute stays open."""
    with connect(role_url(settings, DbRole.OPERATOR)) as conn:
        emsp = disputes.open_dispute(
            conn, CDR_1, "BE*EVB", "AMOUNT_INCORRECT", "1.50", "idle fee twice", "cli:test"
        )
        cpo = disputes.open_dispute(conn, CDR_1, "NL*TNM", "OTHER", "0.10", "", "cli:test")
        disputes.move(conn, emsp.dispute_id, Action.ACCEPT, HUB, "refund", "cli:t", None, "1.25")
        conn.commit()
    return emsp.dispute_id, cpo.dispute_id


def _check_disputes(
    trace: CdrTrace, url: str, tokens: dict[str, str], ids: tuple[int, int]
) -> None:
    emsp_id, cpo_id = ids
    accepted, still_open = trace.disputes
    assert (accepted.dispute.dispute_id, still_open.dispute.dispute_id) == ids
    assert [(t.from_state, t.to_state.value, t.actor) for t in accepted.dispute.history] == [
        (None, "open", "BE*EVB"),
        (accepted.dispute.history[0].to_state, "accepted", "hub"),
    ]
    adjustment = accepted.adjustment
    assert adjustment is not None and still_open.adjustment is None
    assert (adjustment.kind, adjustment.cdr_key) == ("ADJUSTMENT", f"DISPUTE*{emsp_id}")
    assert adjustment.transaction_id == accepted.dispute.adjustment_id
    assert {(p.account, p.side, p.amount) for p in adjustment.postings} == {
        ("partner:BE*EVB", "CREDIT", Decimal("1.2500")),
        ("partner:NL*TNM", "DEBIT", Decimal("1.2500")),
    }

    def seen(token: str) -> list[tuple[int, str]]:
        answer = httpx.get(f"{url}/finance/v1/cdrs/{CDR_1}/trace", timeout=30,
                           headers={"Authorization": f"Bearer {tokens[token]}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return [(d["id"], d["state"]) for d in answer.json()["disputes"]]

    assert seen("finance") == [(emsp_id, "accepted"), (cpo_id, "open")]
    assert seen("BE*EVB") == [(emsp_id, "accepted")]  # each party its own, as /disputes
    assert seen("NL*TNM") == [(cpo_id, "open")]


def _check_cli(settings: Settings, expected: dict[str, Any]) -> None:
    env = {
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "ROAMCLEAR_HOME": str(settings.home),
    }
    runner = CliRunner()
    result = runner.invoke(cli, ["trace", CDR_0.lower(), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected
    unknown = runner.invoke(cli, ["trace", "NL*TNM*NOPE-NEVER"], env=env)
    assert unknown.exit_code == 1 and "NL*TNM*NOPE-NEVER" in unknown.output
    malformed = runner.invoke(cli, ["trace", "CDR-2026-0001"], env=env)
    assert malformed.exit_code == 2 and "CC*PID*ID" in malformed.output


def _check_api(url: str, tokens: dict[str, str], expected: dict[str, Any]) -> None:
    def get(key: str, token: str | None) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {tokens[token]}"}
        return httpx.get(f"{url}/finance/v1/cdrs/{key}/trace", headers=headers, timeout=30)

    assert get(CDR_0, "finance").json() == expected
    assert len(expected["records"]) == 4 and expected["hidden_records"] == 0
    for party in ("NL*TNM", "DE*EMP"):  # its CPO, its eMSP: without NL*ABC's record
        seen = get(CDR_0, party).json()
        assert seen["hidden_records"] == 1 and seen["records"] == expected["records"][:3]
    for stranger in ("BE*EVB", "NL*ABC"):
        assert get(CDR_0, stranger).status_code == 404  # as if it did not exist
    assert get(CDR_1, "BE*EVB").status_code == 200  # BE*EVB is CDR_1's eMSP
    assert get("NL*TNM*NOPE-NEVER", "finance").status_code == 404
    assert get("not-a-key", "finance").status_code == 422
    assert get(CDR_0, None).status_code == 401


def test_trace_tells_each_cdr_story_in_the_cli_and_over_the_api(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url
    register_reference_data(settings)
    with connect(settings.database_url) as conn:
        ocpi_token = ocpi_tokens.issue(conn, PartyRef.parse("NL*TNM"), ocpi_tokens.TokenKind.C)
        tokens = {p: create_token(conn, p) for p in ("NL*TNM", "DE*EMP", "BE*EVB", "NL*ABC")}
        tokens["finance"] = create_token(conn, None)
        conn.commit()
    with serve(settings) as url:
        _book_everything(settings, url, ocpi_token)
        _deliver(settings)
        close_once(settings.database_url, None, ClosePolicy(), load_seal_keys(settings).current)
        dispute_ids = _dispute_cdr_1(settings)
        traces = _traces(settings)
        _check_disputes(traces[CDR_1], url, tokens, dispute_ids)
        _check_credit_on_its_statement(settings, traces[CDR_0])
        _check_charge_and_credit(traces[CDR_0], settings)
        _check_pricing(traces[CDR_0], settings)
        expected = json.loads(json.dumps(traces[CDR_0].as_json()))
        _check_cli(settings, expected)
        _check_api(url, tokens, expected)

    over_http = traces[CDR_2].records[0]
    assert over_http.http is not None and over_http.outcome.outcome == "LEDGERED"
    assert (over_http.http.request_id, over_http.http.correlation_id) == (
        REQUEST_ID,
        CORRELATION_ID,
    )
    assert over_http.http.partner == over_http.authenticated_submitter == "NL*TNM"
    assert [r.outcome.outcome for r in traces[CDR_2].records] == ["LEDGERED", "DUPLICATE"]
    assert [(r.outcome.outcome, r.outcome.reason_code) for r in traces[CDR_1].records] == [
        ("LEDGERED", None),
        ("REJECTED", "cdr_id_conflict"),
    ]
    # the credit's own key tells the same story: the charge it reversed and its records
    credit, original = traces["credit"], traces[CDR_0]
    assert (credit.transactions, credit.records) == (original.transactions, original.records)
    assert credit.pricing == original.pricing
    rejected = traces["no-tariff"]
    assert rejected.pricing is None and rejected.transactions == () and rejected.emsp is None
    assert [(r.outcome.outcome, r.outcome.reason_code) for r in rejected.records] == [
        ("REJECTED", "no_tariff")
    ]
