"""A replayed outcome against the recorded one, for rejections and duplicates, the causes of
an amount change, and the totals (bookings: tests/integration/replay)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.cli.replay import parse_reference
from schemas.hub.ledger import TransactionId, TransactionKind
from schemas.hub.party import CdrKey
from settlement.clearing.entry import Amounts
from settlement.clearing.outcome import ClaimedCdrKey, Duplicate, Rejected
from settlement.clearing.reasons import Reason, Stage
from settlement.replay.compare import causes_of, verdict
from settlement.replay.model import (
    Cause,
    Change,
    Original,
    OriginalOutcome,
    PricedWith,
    ReferenceMode,
    ReplayedRecord,
)
from settlement.replay.report import Totals, csv_row

AT = datetime(2026, 3, 2, 10, tzinfo=UTC)
KEY = "NL*TNM*CDR-1"


def record(outcome: OriginalOutcome, reason: str | None = None) -> ReplayedRecord:
    ledgered = outcome is OriginalOutcome.LEDGERED
    original = Original(
        outcome=outcome,
        decided_at=AT,
        cdr_key=KEY,
        transaction_id="t-1" if outcome is not OriginalOutcome.REJECTED else None,
        kind=TransactionKind.CHARGE if ledgered else None,
        cpo="NL*TNM",
        emsp="DE*EMP" if outcome is not OriginalOutcome.REJECTED else None,
        currency="EUR" if outcome is not OriginalOutcome.REJECTED else None,
        amounts=(
            Amounts(Decimal("7.25"), Decimal("8.7725"), Decimal("0.1088")) if ledgered else None
        ),
        priced_with=PricedWith("h1", ("TNM-DEFAULT", 1), "Europe/Amsterdam") if ledgered else None,
        reason=reason,
    )
    return ReplayedRecord(1, "t", 0, 7, AT, b"{}", (), original)


def rejected(reason: Reason) -> Rejected:
    return Rejected(reason, Stage.RATE, "why", cdr_key=ClaimedCdrKey(KEY))


def test_rejections_and_duplicates_are_classified() -> None:
    same = verdict(record(OriginalOutcome.REJECTED, "no_tariff"), rejected(Reason.NO_TARIFF))
    assert (same.change, same.reason, same.cdr_key) == (Change.SAME, "no_tariff", KEY)
    other = verdict(record(OriginalOutcome.REJECTED, "no_tariff"), rejected(Reason.NO_AGREEMENT))
    assert other.change is Change.OUTCOME_CHANGED
    now_rejected = verdict(record(OriginalOutcome.LEDGERED), rejected(Reason.NO_AGREEMENT))
    assert (now_rejected.change, now_rejected.message) == (Change.NOW_REJECTED, "why")
    assert (now_rejected.cpo, now_rejected.emsp, now_rejected.currency) == (
        "NL*TNM",
        "DE*EMP",
        "EUR",
    )
    duplicate = Duplicate(CdrKey.parse(KEY), TransactionId("t-1"))
    assert verdict(record(OriginalOutcome.DUPLICATE), duplicate).change is Change.SAME
    assert verdict(record(OriginalOutcome.LEDGERED), duplicate).change is Change.OUTCOME_CHANGED

    totals = Totals()
    for v in (same, other, now_rejected):
        totals.add(v)
    lines = {(t["partner"], t["role"], t["currency"]): t["changes"] for t in totals.as_json()}
    # the rejections name no currency ("-"); the once-booked CDR counts for its CPO and eMSP
    cpo, emsp = ("NL*TNM", "CPO"), ("DE*EMP", "EMSP")
    assert set(lines) == {(*cpo, "-"), (*cpo, "EUR"), (*emsp, "EUR")}
    assert lines[("NL*TNM", "CPO", "-")]["same"] == 1
    assert lines[("NL*TNM", "CPO", "EUR")]["now_rejected"] == 1
    assert lines[("DE*EMP", "EMSP", "EUR")]["now_rejected"] == 1
    assert totals.changes == {"same": 1, "outcome_changed": 1, "now_rejected": 1}
    row = csv_row(now_rejected)
    assert row[8] == "now_rejected" and row[-2:] == ["no_agreement", "why"]


def test_the_cause_is_the_input_that_differs_else_the_engine() -> None:
    booked = PricedWith("h1", ("A", 1), "Europe/Amsterdam")
    assert causes_of(booked, booked) == (Cause.ENGINE,)
    assert causes_of(booked, PricedWith("h2", ("A", 2), "Europe/Amsterdam")) == (
        Cause.TARIFF_VERSION,
        Cause.AGREEMENT,
    )
    assert causes_of(booked, PricedWith("h1", ("A", 1), "UTC")) == (Cause.TIME_ZONE,)
    assert Cause.ENGINE not in causes_of(None, booked)  # no stored inputs: all may differ


def test_reference_options() -> None:
    assert parse_reference("current").mode is ReferenceMode.CURRENT
    as_of = parse_reference("as-of 2026-03-15T00:00Z")
    assert as_of.as_of == datetime(2026, 3, 15, tzinfo=UTC)
    assert parse_reference("as-of=2026-03-15").as_of == datetime(2026, 3, 15, tzinfo=UTC)
    with pytest.raises(Exception, match="2"):  # typer.Exit(2)
        parse_reference("latest")
