"""Re-deriving a booked charge's per-period breakdown: the archived record re-rated by the
same engine with the reference data the booking names.

A booking stores its totals, its VAT split and which tariff version, time zone and agreement
priced it (settlement.clearing.trace.ChargeTrace), not the periods: they follow from those
inputs (rating is deterministic, invariant 7), so the trace recomputes them and says whether
the recomputation gives the booked total back. Nothing is written.

    >>> rerate_as_booked(None, None, None, None, Decimal("1"), Decimal("1")).note
    'the archived record has no value to re-rate'
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from schemas.validation import SchemaInvalid, parse_tariff
from settlement.cdr_trace import Breakdown, BreakdownSource
from settlement.clearing.decode import Decoded, decode_validated
from settlement.rating import RatingError, rate_cdr


def _unavailable(note: str) -> Breakdown:
    return Breakdown(BreakdownSource.UNAVAILABLE, None, None, note)


def rerate_as_booked(
    value: bytes | None,
    tariff_body: Mapping[str, Any] | None,
    time_zone: str | None,
    tolerance: Decimal | None,
    booked_excl_vat: Decimal | None,
    booked_incl_vat: Decimal | None,
) -> Breakdown:
    """The breakdown of the archived record `value` priced with `tariff_body` (None: the
    CDR's embedded tariff, as an agreement allowing it priced it) in `time_zone` with the
    agreement's `tolerance`; `matches_booking` compares with the booked hub total."""
    if value is None:
        return _unavailable("the archived record has no value to re-rate")
    decoded = decode_validated(value)
    if not isinstance(decoded, Decoded):
        return _unavailable(f"the archived record no longer decodes: {decoded.message}")
    if tolerance is None:
        return _unavailable("the agreement version that priced it is not stored")
    try:
        tariff = None if tariff_body is None else parse_tariff(dict(tariff_body))
    except SchemaInvalid as exc:
        return _unavailable(f"the stored tariff version no longer parses: {exc.as_text()}")
    try:
        rated = rate_cdr(decoded.cdr, tariff, time_zone=time_zone, tolerance=tolerance)
    except RatingError as exc:
        return _unavailable(f"re-rating refused it: {exc.reason_code}: {exc.message}")
    total = rated.totals.total_cost
    matches = total.excl_vat == booked_excl_vat and total.incl_vat == booked_incl_vat
    note = (
        None
        if matches
        else f"re-rated total {total.excl_vat}/{total.incl_vat} differs from the booked "
        f"{booked_excl_vat}/{booked_incl_vat}: the engine or the reference data changed"
    )
    return Breakdown(BreakdownSource.RE_RATED, rated, matches, note)
