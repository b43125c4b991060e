"""settlement.money: every rounding step named, explicit modes, floats refused."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest

from settlement import money

D = Decimal


def test_round_cdr_total_half_up_four_decimals() -> None:
    assert money.round_cdr_total(D("5.62375")) == D("5.6238")
    assert money.round_cdr_total(D("-5.62375")) == D("-5.6238")
    assert money.round_cdr_total(D("0.00005")) == D("0.0001")


def test_round_posting_half_up_four_decimals() -> None:
    assert money.round_posting(D("1.00005")) == D("1.0001")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [("5.125", "EUR", "5.13"), ("5.5", "JPY", "6"), ("1.2345", "BHD", "1.235")],
)
def test_round_minor_unit_half_up(amount: str, currency: str, expected: str) -> None:
    assert money.round_minor_unit(D(amount), currency) == D(expected)


def test_unknown_currency_refused() -> None:
    with pytest.raises(ValueError, match="currency"):
        money.round_minor_unit(D("1"), "XQZ")


def test_rounding_ignores_the_ambient_context() -> None:
    with decimal.localcontext() as ambient:
        ambient.rounding = decimal.ROUND_DOWN
        ambient.prec = 3
        assert money.round_cdr_total(D("12.34565")) == D("12.3457")
        assert money.round_for_comparison(D("5.125"), 2) == D("5.13")


@pytest.mark.parametrize("function", [money.round_cdr_total, money.round_posting])
def test_floats_refused(function: object) -> None:
    with pytest.raises(TypeError):
        function(0.1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        money.to_decimal(0.1)  # type: ignore[arg-type]


def test_float_in_rating_arithmetic_traps() -> None:
    with money.rating_context(), pytest.raises(decimal.FloatOperation):
        _ = D("1") < 0.5


def test_to_decimal_accepts_str_int_decimal() -> None:
    assert money.to_decimal("0.25") == D("0.25")
    assert money.to_decimal(3) == D(3)


def test_round_up_to_step_exact() -> None:
    assert money.round_up_to_step(D("479.9988"), D(900)) == D(900)
    assert money.round_up_to_step(D("900"), D(900)) == D(900)
    assert money.round_up_to_step(D("5.4"), D("0.5")) == D("5.5")
    assert money.round_up_to_step(D("0"), D(300)) == D(0)


def test_vat_helpers_agree() -> None:
    amount = D("4.75")
    with money.rating_context():
        assert money.apply_vat(amount, D("5.2")) == amount * money.vat_multiplier(D("5.2"))
    assert money.apply_vat(amount, None) == amount
    assert money.apply_vat(amount, D("5.2")) == D("4.99700")


def test_hours_from_seconds() -> None:
    assert money.hours_from_seconds(D(900)) == D("0.25")


def test_to_money_at_the_boundary() -> None:
    assert str(money.to_money(D("5.13"), "EUR").amount) == "5.13"
