"""Money and rounding: the one place that owns Decimal contexts, scales and rounding steps.

Every rounding roamclear performs is a named function here, with its mode and exponent
written at the call site. Nothing relies on the ambient decimal context: arithmetic runs
inside ``rating_context()`` (34 significant digits, float mixing trapped), and every
``quantize`` passes its own rounding mode and context.

Worked example (a CDR priced at full precision, then rounded once for the CDR total)::

    >>> from decimal import Decimal
    >>> with rating_context():
    ...     energy = Decimal("20.45") * Decimal("0.25")      # 5.1125, exact
    ...     incl = apply_vat(energy, Decimal("10"))         # 5.62375, exact
    >>> round_cdr_total(incl)
    Decimal('5.6238')
    >>> round_minor_unit(Decimal("5.125"), "EUR")            # half-up, never banker's
    Decimal('5.13')
    >>> to_decimal(0.1)
    Traceback (most recent call last):
    ...
    TypeError: refusing float 0.1: pass a str, int or Decimal

The rounding steps, in the order a CDR meets them:

1. ``RATING_CONTEXT`` (``rating_context()``): rating arithmetic. Products and sums of OCPI
   numbers are exact at 34 digits; the only inexact operation is converting seconds to hours
   (division by 3600, ``hours_from_seconds``), rounded half-even at the 34th digit. That error
   (< 1e-30) vanishes in step 2.
2. ``round_cdr_total``: a CDR's cost totals, 4 decimals (OCPI ``number``), half-up.
3. ``round_posting``: a ledger posting, 4 decimals (numeric(20,4)), half-up.
4. ``round_minor_unit``: a settlement batch's payable amount, the currency's minor unit
   (ISO 4217 via py-moneyed's table), half-up.
5. ``round_agreement``: a CDR's settled amount and its hub fee, by the roaming agreement's
   rounding policy (mode and 0-4 decimals; default half-up to 4), before they are posted.
   The CPO's share is then the settled amount minus the fee, exactly, so the split adds up.
6. ``round_for_comparison``: comparing a computed figure with a published one stated to
   ``decimals`` places, half-up. Used by reconciliation and tests, never for booking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    FloatOperation,
    InvalidOperation,
    Overflow,
    localcontext,
)

import moneyed

RATING_PRECISION_DIGITS = 34
"""Significant digits of rating arithmetic (IEEE 754 decimal128), far above any CDR figure."""

RATING_CONTEXT = Context(
    prec=RATING_PRECISION_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    # A float slipping into Decimal arithmetic or comparisons raises instead of rounding.
    traps=[InvalidOperation, DivisionByZero, Overflow, FloatOperation],
)

CDR_TOTAL_EXPONENT = Decimal("0.0001")
"""OCPI CDR totals carry 4 decimals."""

POSTING_EXPONENT = Decimal("0.0001")
"""Ledger postings are numeric(20,4)."""

SECONDS_PER_HOUR = Decimal(3600)
WH_PER_KWH = Decimal(1000)
ZERO = Decimal(0)
ONE_HUNDRED = Decimal(100)


def rating_context() -> contextlib.AbstractContextManager[Context]:
    """Run Decimal arithmetic under ``RATING_CONTEXT`` (explicit, never the ambient one)."""
    return localcontext(RATING_CONTEXT)


def to_decimal(value: Decimal | int | str) -> Decimal:
    """A Decimal from a str, int or Decimal; floats are refused (they are binary fractions)."""
    if isinstance(value, float):
        raise TypeError(f"refusing float {value!r}: pass a str, int or Decimal")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"refusing {type(value).__name__} {value!r}: pass a str, int or Decimal")
    return RATING_CONTEXT.create_decimal(value)


def _refuse_non_decimal(amount: object) -> Decimal:
    if not isinstance(amount, Decimal):
        raise TypeError(f"refusing {type(amount).__name__} {amount!r}: rounding takes a Decimal")
    return amount


def round_cdr_total(amount: Decimal) -> Decimal:
    """Round a CDR cost total to 4 decimals, half-up (OCPI ``number``; DESIGN.md)."""
    return _refuse_non_decimal(amount).quantize(
        CDR_TOTAL_EXPONENT, rounding=ROUND_HALF_UP, context=RATING_CONTEXT
    )


def round_posting(amount: Decimal) -> Decimal:
    """Round a ledger posting amount to 4 decimals, half-up (numeric(20,4))."""
    return _refuse_non_decimal(amount).quantize(
        POSTING_EXPONENT, rounding=ROUND_HALF_UP, context=RATING_CONTEXT
    )


def minor_unit_exponent(currency: str) -> Decimal:
    """``Decimal('0.01')`` for EUR, ``Decimal('1')`` for JPY, ``Decimal('0.001')`` for BHD."""
    try:
        sub_unit = moneyed.get_currency(currency.upper()).sub_unit
    except moneyed.CurrencyDoesNotExist as error:
        raise ValueError(f"unknown ISO 4217 currency {currency!r}") from error
    digits = len(str(sub_unit)) - 1  # sub_unit is 1, 10, 100 or 1000
    return Decimal(1).scaleb(-digits)


def round_minor_unit(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half-up (settlement batch payable amounts)."""
    return _refuse_non_decimal(amount).quantize(
        minor_unit_exponent(currency), rounding=ROUND_HALF_UP, context=RATING_CONTEXT
    )


def round_for_comparison(amount: Decimal, decimals: int) -> Decimal:
    """Round half-up to ``decimals`` places to compare with a figure published that precisely."""
    return _refuse_non_decimal(amount).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP, context=RATING_CONTEXT
    )


def hours_from_seconds(seconds: Decimal) -> Decimal:
    """Seconds to hours: the one inexact rating step (÷3600 at 34 significant digits)."""
    return RATING_CONTEXT.divide(_refuse_non_decimal(seconds), SECONDS_PER_HOUR)


def round_up_to_step(quantity: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` that is >= ``quantity`` (OCPI step_size); exact."""
    assert step > ZERO, step
    blocks = RATING_CONTEXT.divide(quantity, step).to_integral_value(
        rounding=ROUND_CEILING, context=RATING_CONTEXT
    )
    # The division above may be rounded at the 34th digit; correct the block count exactly.
    while RATING_CONTEXT.multiply(blocks, step) < quantity:
        blocks += 1
    while blocks > 0 and RATING_CONTEXT.multiply(blocks - 1, step) >= quantity:
        blocks -= 1
    return RATING_CONTEXT.multiply(blocks, step)


def apply_vat(amount_excl_vat: Decimal, vat_percent: Decimal | None) -> Decimal:
    """Amount including VAT; ``None`` means no VAT applicable (OCPI PriceComponent.vat)."""
    if vat_percent is None:
        return amount_excl_vat
    vat = RATING_CONTEXT.divide(RATING_CONTEXT.multiply(amount_excl_vat, vat_percent), ONE_HUNDRED)
    return RATING_CONTEXT.add(amount_excl_vat, vat)


def vat_multiplier(vat_percent: Decimal | None) -> Decimal:
    """``1 + vat/100``, exact (a decimal shift): ``amount * vat_multiplier(vat)`` equals
    ``apply_vat(amount, vat)``. Precomputed per price component by the rating engine."""
    if vat_percent is None:
        return Decimal(1)
    return RATING_CONTEXT.add(Decimal(1), RATING_CONTEXT.divide(vat_percent, ONE_HUNDRED))


def sum_exact(amounts: Iterator[Decimal] | tuple[Decimal, ...] | list[Decimal]) -> Decimal:
    """Sum under ``RATING_CONTEXT`` (exact for CDR-sized figures)."""
    total = ZERO
    for amount in amounts:
        total = RATING_CONTEXT.add(total, amount)
    return total


def to_money(amount: Decimal, currency: str) -> moneyed.Money:
    """py-moneyed Money for boundaries (display, statements); never use its round()."""
    return moneyed.Money(_refuse_non_decimal(amount), currency)


# The agreement's modes, plus UP, which only `allocation` uses to keep a rounded fee at or
# above the agreement's minimum.
_ROUNDING_MODES = {
    "HALF_UP": ROUND_HALF_UP,
    "HALF_EVEN": ROUND_HALF_EVEN,
    "DOWN": ROUND_DOWN,
    "UP": ROUND_UP,
}


def round_agreement(amount: Decimal, mode: str, decimals: int) -> Decimal:
    """Round a settled CDR amount or hub fee by the roaming agreement's rounding policy.

    OCPI leaves rounding to the parties, so the agreement names mode and decimals (at most
    4, the ledger's scale); the policy is recorded with every booking.
    """
    value = _refuse_non_decimal(amount)
    if not 0 <= decimals <= 4:
        raise ValueError(f"agreement rounding allows 0 to 4 decimals, not {decimals}")
    exponent = Decimal(1).scaleb(-decimals)
    return value.quantize(exponent, rounding=_ROUNDING_MODES[mode], context=RATING_CONTEXT)
