"""``rate_cdr``: price an OCPI 2.2.1 CDR against its tariff, exactly, and explain the price.

Steps: choose the tariff (``selection``), compile it once (``compile``), check currency and
validity, resolve the time zone if the tariff needs local time (``timezones``), order the
periods and derive their facts (``periods``), match and step-round (``pricing``), total,
limit, round and compare (``totals``). All arithmetic runs under
``settlement.money.rating_context()``; only ``round_cdr_total`` rounds the totals.

Credit CDRs (mod_cdrs "Credit CDRs"): a credit CDR "will contain all the data of the
original CDR", only its total_cost is negative. It is priced like the original (absolute
volumes, in case a CPO negated them too) and every amount is then negated, so a credit
reverses the original exactly.

    >>> # rated = rate_cdr(cdr, tariff, time_zone="Europe/Berlin")
    >>> # rated.totals.total_cost -> Cost(excl_vat=Decimal('9.0000'), incl_vat=...)
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff
from settlement.money import rating_context
from settlement.rating.compile import compile_tariff
from settlement.rating.errors import MissingTimeZone, NoMatchingElement
from settlement.rating.model import CompiledTariff
from settlement.rating.periods import order_periods
from settlement.rating.pricing import charge_periods
from settlement.rating.results import RatedCdr
from settlement.rating.selection import check_applicable, select_tariff
from settlement.rating.timezones import ZoneLookup, load_zone, resolve_zone
from settlement.rating.totals import compare, declared_totals, exact_totals, signed_totals

DEFAULT_TOLERANCE = Decimal("0.01")
"""Largest absolute difference per total accepted between computed and declared figures."""


def _zone(
    cdr: Cdr,
    tariff: CompiledTariff,
    time_zone: str | ZoneInfo | None,
    zone_lookup: ZoneLookup | None,
) -> ZoneInfo | None:
    """The zone for local-time restrictions; None when the tariff has none and none is given."""
    if not tariff.needs_local_time and time_zone is None:
        return None
    if isinstance(time_zone, str) and time_zone:
        return load_zone(time_zone)  # explicit, as resolve_zone would find it
    resolved = resolve_zone(cdr, time_zone, zone_lookup)
    if resolved is None:
        location = cdr.cdr_location
        raise MissingTimeZone(
            f"tariff {tariff.ref.id!r} has local-time restrictions and no time zone is known "
            f"for location {location.id!r} (country {location.country!r}); pass --timezone "
            "or register the location"
        )
    return resolved.zone


def rate_cdr(
    cdr: Cdr,
    tariff: Tariff | None = None,
    *,
    time_zone: str | ZoneInfo | None = None,
    tolerance: Decimal = DEFAULT_TOLERANCE,
    zone_lookup: ZoneLookup | None = None,
) -> RatedCdr:
    """Price ``cdr`` with ``tariff`` (default: the CDR's embedded tariff). Raises RatingError."""
    if not isinstance(tolerance, Decimal):
        raise TypeError(f"tolerance must be a Decimal, not {type(tolerance).__name__}")
    with rating_context():
        compiled = compile_tariff(select_tariff(cdr, tariff))
        check_applicable(cdr, compiled)
        zone = _zone(cdr, compiled, time_zone, zone_lookup)
        credit = cdr.credit is True
        ordered = order_periods(cdr, zone if compiled.needs_local_time else None, credit)
        charged = charge_periods(compiled, ordered)
        if ordered.has_priced_volume and not charged.charged:
            raise NoMatchingElement(
                f"no element of tariff {compiled.ref.id!r} matches any period of CDR "
                f"{cdr.id!r}; the tariff cannot be the one the session was charged with"
            )
        exact, price_limit = exact_totals(compiled, charged)
        rounded, exact_signed = signed_totals(exact, credit)
        declared = declared_totals(cdr)
        return RatedCdr(
            cdr_id=cdr.id,
            currency=cdr.currency,
            credit=credit,
            time_zone=None if zone is None else zone.key,
            tariff=compiled.ref,
            periods=charged.periods,
            totals=rounded,
            exact_totals=exact_signed,
            price_limit=price_limit,
            declared=declared,
            comparison=compare(rounded, declared, tolerance, credit),
        )
