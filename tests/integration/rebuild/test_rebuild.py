"""Rebuild proves the books: a simulated mixed stream cleared as the worker clears it, cleared
again from the topics (and from the archive) into empty databases, `books diff` identical;
one posting tampered with, `books diff` names exactly that posting and its balance."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from pipeline.config import Settings
from pipeline.simulate.config import Category, ScenarioConfig
from pipeline.simulate.reference import build_reference
from pipeline.simulate.scenario import generate_scenario
from pipeline.simulate.send import register, send_stream
from tests.conftest import scratch_database
from tests.integration.clearing.helpers import clear_in_process, topic_records

pytestmark = pytest.mark.integration

CDRS = 400  # enough for every fault category at its default share
CENT = Decimal("0.01")
BATCH = 64  # the live clearing's batch size here: several batches, as a worker clears them


def _env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "ROAMCLEAR_HOME": str(settings.home),
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
    }


def _run(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, [*args, "--json"], env=_env(settings))
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _tamper_one_posting(database_url: str) -> dict[str, Any]:
    """Add a cent to one partner posting, past the append-only trigger (as the owner)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        row = conn.execute(
            "SELECT posting_id, transaction_id::text, account, side, currency, amount::text "
            "FROM ledger_posting WHERE account LIKE 'partner:%' ORDER BY posting_id LIMIT 1"
        ).fetchone()
        assert row is not None
        conn.execute("ALTER TABLE ledger_posting DISABLE TRIGGER ledger_posting_append_only")
        conn.execute(
            "UPDATE ledger_posting SET amount = amount + 0.01 WHERE posting_id = %s", row[:1]
        )
        conn.execute("ALTER TABLE ledger_posting ENABLE TRIGGER ledger_posting_append_only")
    _, tid, account, side, currency, amount = row
    return {
        "key": f"{tid}/{account}/{side}/{currency}#1",
        "amount": amount,
        "account": account,
        "currency": currency,
        "side": side,
    }


def test_rebuild_gives_identical_books_and_diff_finds_a_tampered_posting(
    fresh_settings: Settings, postgres_server_url: str, template_database: str
) -> None:
    settings = fresh_settings
    config = ScenarioConfig(cdrs=CDRS, seed=14)
    scenario = generate_scenario(config)
    assert {s.category for s in scenario.submissions} == set(Category)  # every fault
    register(settings, build_reference(config))
    asyncio.run(send_stream(settings, scenario.submissions))
    live = asyncio.run(clear_in_process(settings, topic_records(settings), BATCH))
    expected = scenario.expected
    assert live == Counter(
        booked=expected.ledgered, duplicate=expected.duplicates, rejected=expected.rejected
    )

    live_url = settings.database_url
    assert live_url is not None
    with (
        # migrated already (from the template): the rebuild's own migration finds nothing
        # to do, which keeps the test short
        scratch_database(postgres_server_url, "roamclear_rb", template_database) as from_topic,
        scratch_database(postgres_server_url, "roamclear_ra", template_database) as from_archive,
    ):
        code, summary = _run(settings, "rebuild", "--into", from_topic)
        assert code == 0 and summary["source"] == "topic" and summary["records"] == CDRS
        assert Counter(summary["outcomes"]) == live
        assert summary["reference_applied"]["tariff.published"] == len(scenario.tariffs)
        assert summary["events_not_produced"] > 0 and not summary["reference_refused"]
        again = CliRunner().invoke(cli, ["rebuild", "--into", from_topic], env=_env(settings))
        assert again.exit_code == 1 and "not empty" in again.output  # refused: nothing written

        code, summary = _run(settings, "rebuild", "--into", from_archive, "--from-archive")
        assert code == 0 and Counter(summary["outcomes"]) == live

        for rebuilt in (from_topic, from_archive):
            code, found = _run(settings, "books", "diff", live_url, rebuilt)
            assert code == 0 and found["identical"], found["differences"][:5]
            sections = found["sections"]
            assert sections["postings"]["rows_a"] > 0 and sections["rejections"]["rows_a"] > 0
            assert all(s["rows_a"] == s["rows_b"] for s in sections.values())

        tampered = _tamper_one_posting(from_topic)
        code, found = _run(settings, "books", "diff", live_url, from_topic)
        assert code == 1 and not found["identical"]
        sign = 1 if tampered["side"] == "CREDIT" else -1
        balance_key = f"{tampered['account']}/{tampered['currency']}"
        differences = [(d["section"], d["key"], d["field"]) for d in found["differences"]]
        assert differences == [
            ("postings", tampered["key"], "amount"),
            ("balances", balance_key, "balance"),
        ]
        posting, balance = found["differences"]
        assert posting["a"] == tampered["amount"]
        assert Decimal(posting["b"]) == Decimal(tampered["amount"]) + CENT
        assert Decimal(balance["b"]) - Decimal(balance["a"]) == sign * CENT
