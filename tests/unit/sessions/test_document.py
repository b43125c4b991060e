"""What the hub cannot store or write back exactly is found, with its path, before anything
is stored (a value PostgreSQL refuses would otherwise fail a whole batch)."""

from __future__ import annotations

from decimal import Decimal

from settlement.sessions.document import session_key, unstorable
from tests.unit.sessions.factories import TNM, session


def test_a_session_key_is_upper_case() -> None:
    assert session_key(TNM, "ses-1") == "NL*TNM*SES-1"


def test_an_ordinary_session_is_storable() -> None:
    assert unstorable(session(x_big=Decimal("1e300"), x_small=Decimal("1e-300"))) == ()


def test_every_unstorable_value_is_named() -> None:
    found = unstorable(
        session(
            x_nul="a\x00b",
            x_surrogate="\ud800",
            x_huge=Decimal("1e200000"),
            x_tiny=Decimal("1e-20000"),
            x_int=2**64,
            x_nan=float("nan"),
            x_list=[{"k\x00": 1}],
        )
    )
    assert [v.path for v in found] == [
        "x_huge",
        "x_int",
        "x_list[0].k\\u0000",
        "x_nan",
        "x_nul",
        "x_surrogate",
        "x_tiny",
    ]
    assert all(v.code == "unstorable" for v in found)


def test_nesting_has_a_limit() -> None:
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    assert [v.rule for v in unstorable({"x": deep})] == ["nested too deeply"]
