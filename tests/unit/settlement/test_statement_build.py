"""Statement totals from lines: roles, fees paid, rounding, VAT, the net identity."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.batch import BatchState
from schemas.hub.ledger import Side, TransactionId, TransactionKind
from settlement.disputes import mark_statement
from settlement.statements.build import build_statement, role_of, statement_json, vat_parts
from settlement.statements.csv_export import write_csv
from settlement.statements.model import Direction, LineRole, StatementHeader, StatementLine

T = datetime(2025, 5, 1, tzinfo=UTC)
HEADER = StatementHeader(
    1,
    "NL*TNM",
    ("CPO", "EMSP"),
    "EUR",
    SettlementPeriod.MONTHLY,
    T,
    T,
    "UTC",
    BatchState.CLOSED,
    "0" * 64,
    T,
    T,
)


def line(
    n: int,
    role: LineRole,
    side: Side,
    amount: str,
    gross: str,
    kind: str = "CHARGE",
    late: bool = False,
) -> StatementLine:
    sign = -1 if kind == "REVERSAL" else 1
    incl = Decimal(gross) * sign
    return StatementLine(
        n,
        TransactionId(f"t{n}"),
        TransactionKind(kind),
        f"NL*TNM*C{n}",
        role,
        "DE*EMS",
        T,
        T,
        "LOC",
        Decimal(1),
        incl,
        incl,
        Decimal("0.15"),
        side,
        Decimal(amount),
        late,
        vat_parts(None, incl, incl),
    )


def test_roles_fees_and_the_net_identity() -> None:
    lines = [
        line(1, LineRole.CPO, Side.CREDIT, "9.8500", "10.0000"),  # CPO pays a 0.15 fee
        line(2, LineRole.EMSP, Side.DEBIT, "3.2000", "3.0000"),  # eMSP pays a 0.20 fee
        line(3, LineRole.CPO, Side.DEBIT, "9.8500", "10.0000", kind="REVERSAL", late=True),
        line(4, LineRole.ROUNDING, Side.CREDIT, "0.0000", "0", kind="ROUNDING"),
    ]
    lines[3] = StatementLine(
        4,
        TransactionId("r"),
        TransactionKind.ROUNDING,
        "ROUNDING*x",
        LineRole.ROUNDING,
        None,
        T,
        T,
        None,
        Decimal(0),
        Decimal(0),
        Decimal(0),
        Decimal(0),
        Side.DEBIT,
        Decimal("0.0000"),
        False,
        (),
    )
    totals = build_statement(HEADER, lines).totals
    assert totals.receivable_as_cpo == Decimal("0.0000")
    assert totals.payable_as_emsp == Decimal("3.0000")
    assert totals.hub_fees == Decimal("0.2000")
    assert totals.net_amount == Decimal("-3.2000")
    assert totals.direction is Direction.PARTNER_PAYS_HUB
    assert totals.late_adjustments == Decimal("-9.8500") and totals.late_postings == 1


def test_role_of_self_billing_uses_the_side() -> None:
    assert role_of("NL*TNM", "NL*TNM", "DE*EMS", "CHARGE", Side.DEBIT) is LineRole.CPO
    assert role_of("NL*TNM", "NL*TNM", "NL*TNM", "CHARGE", Side.CREDIT) is LineRole.CPO
    assert role_of("NL*TNM", "NL*TNM", "NL*TNM", "CHARGE", Side.DEBIT) is LineRole.EMSP
    assert role_of("NL*TNM", "NL*TNM", "NL*TNM", "REVERSAL", Side.DEBIT) is LineRole.CPO


def test_vat_breakdown_is_read_or_falls_back() -> None:
    # a reversal's breakdown is stored negated, as clearing books it: read as booked
    raw = [{"vat": "21.0", "excl_vat": "-8.2645", "incl_vat": "-10.0000"}]
    assert vat_parts(raw, Decimal(0), Decimal(0))[0].incl_vat == Decimal("-10.0000")
    assert vat_parts({"bad": 1}, Decimal(1), Decimal(2))[0].vat is None
    assert vat_parts([{"vat": "9"}], Decimal(1), Decimal(2))[0].incl_vat == Decimal(2)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [{"vat": 21, "excl_vat": Decimal("8.2645"), "incl_vat": Decimal(10)}, {"vat": None}],
        [{"vat": "9.0", "excl_vat": None, "incl_vat": "1.0000"}],
        [{"vat": "9.0", "excl_vat": "x", "incl_vat": "1.0000"}],
        [{"vat": "9.0", "excl_vat": "NaN", "incl_vat": "1.0000"}],
        [{"vat": "9.0", "excl_vat": True, "incl_vat": "1.0000"}],
        [{"vat": "9.0", "excl_vat": "0.9", "incl_vat": "1.0"}, 3],
    ],
)
def test_a_malformed_breakdown_counts_whole_under_rate_unknown(raw: object) -> None:
    # all or nothing: no well-formed item of it is kept, the line's own amounts stand
    parts = vat_parts(raw, Decimal("-3.3058"), Decimal("-4.0000"))
    assert [(p.vat, p.excl_vat, p.incl_vat) for p in parts] == [
        (None, Decimal("-3.3058"), Decimal("-4.0000"))
    ]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([LineRole.CPO, LineRole.EMSP]),
            st.booleans(),
            st.integers(1, 10**8),
            st.integers(0, 10**5),
        ),
        max_size=30,
    )
)
def test_csv_and_json_totals_agree_for_any_lines(
    items: list[tuple[LineRole, bool, int, int]],
) -> None:
    lines = []
    for n, (role, reversal, gross_units, fee_units) in enumerate(items):
        gross = Decimal(gross_units).scaleb(-4)
        fee = Decimal(fee_units).scaleb(-4)
        booked = gross - fee if role is LineRole.CPO else gross + fee
        side = Side.CREDIT if (role is LineRole.CPO) != reversal else Side.DEBIT
        lines.append(
            line(n, role, side, str(booked), str(gross), kind="REVERSAL" if reversal else "CHARGE")
        )
    statement = build_statement(HEADER, lines)
    buffer = io.StringIO()
    write_csv(statement, buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    totals = {r["name"]: r["value"] for r in rows if r["record"] == "total"}
    marked = mark_statement(statement_json(statement), ())  # as the finance API serves it
    assert totals == {k: str(v) for k, v in marked["totals"].items()}
    nets = sum((Decimal(r["net"]) for r in rows if r["record"] == "line"), Decimal(0))
    assert nets == statement.totals.net_amount
