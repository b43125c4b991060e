"""Tariff rating: price an OCPI 2.2.1 CDR against the CPO's tariff, exactly, and explain it.

    >>> from settlement.rating import rate_cdr
    >>> # rated = rate_cdr(cdr)                       # the CDR's embedded tariff
    >>> # rated = rate_cdr(cdr, tariff, time_zone="Europe/Berlin")
    >>> # rated.totals.total_cost, rated.periods[0].charges, rated.comparison.within_tolerance

Semantics, decisions and their spec sections are documented in the modules: ``selection``
(which tariff), ``restrictions`` (when an element applies), ``pricing`` (element lookup, FLAT,
step_size), ``totals`` (subtotals, min/max price, credit, comparison), ``timezones``.
"""

from settlement.rating.compile import clear_compiled_tariff_cache, compile_tariff
from settlement.rating.engine import DEFAULT_TOLERANCE, rate_cdr
from settlement.rating.errors import (
    AmbiguousTariff,
    CurrencyMismatch,
    EndBeforeStart,
    MissingTimeZone,
    NegativeVolume,
    NoMatchingElement,
    NoTariff,
    PeriodsLimitExceeded,
    RatingError,
    TariffNotValid,
)
from settlement.rating.model import CompiledTariff, Dimension, TariffRef
from settlement.rating.results import (
    Comparison,
    ComponentCharge,
    Cost,
    CostTotals,
    DeclaredPrice,
    DeclaredTotals,
    FieldDelta,
    PeriodCharge,
    RatedCdr,
)
from settlement.rating.timezones import ZoneLookup, zone_for_country

__all__ = [
    "DEFAULT_TOLERANCE",
    "AmbiguousTariff",
    "Comparison",
    "CompiledTariff",
    "ComponentCharge",
    "Cost",
    "CostTotals",
    "CurrencyMismatch",
    "DeclaredPrice",
    "DeclaredTotals",
    "Dimension",
    "EndBeforeStart",
    "FieldDelta",
    "MissingTimeZone",
    "NegativeVolume",
    "NoMatchingElement",
    "NoTariff",
    "PeriodCharge",
    "PeriodsLimitExceeded",
    "RatedCdr",
    "RatingError",
    "TariffNotValid",
    "TariffRef",
    "ZoneLookup",
    "clear_compiled_tariff_cache",
    "compile_tariff",
    "rate_cdr",
    "zone_for_country",
]
