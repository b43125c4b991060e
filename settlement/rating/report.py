"""A RatedCdr as JSON-ready data: the ``roamclear rate --json`` contract.

    {"total_cost": {"excl_vat": "5.5000", "incl_vat": "6.1000"},
     "total_energy_cost": {...}, "total_time_cost": null, ...,
     "declared": {"total_cost": {"excl_vat": "5.50", "incl_vat": null}, ...},
     "discrepancy": null,
     "tariff": {"id": "13", "country_code": "DE", "party_id": "ALL",
                "last_updated": "2018-12-18T17:07:11Z", "content_hash": "9c1f…"},
     "time_zone": "Europe/Berlin", "price_limit": null, "credit": false,
     "periods": [{"index": 0, "start_date_time": "…", "charges": [...], "unpriced": []}]}

Amounts are decimal strings (never JSON numbers, which readers parse as floats).
``discrepancy`` is null when every declared total is within the tolerance.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from settlement.rating.results import (
    TOTAL_FIELDS,
    ComponentCharge,
    Cost,
    DeclaredPrice,
    PeriodCharge,
    RatedCdr,
)


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _price(price: Cost | DeclaredPrice | None) -> dict[str, str | None] | None:
    if price is None:
        return None
    return {"excl_vat": _decimal(price.excl_vat), "incl_vat": _decimal(price.incl_vat)}


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _charge(charge: ComponentCharge) -> dict[str, Any]:
    # written out (no helper calls): the clearing agent writes one per priced component
    cost, vat = charge.cost, charge.vat
    return {
        "dimension": charge.dimension.value,
        "element_index": charge.element_index,
        "component_index": charge.component_index,
        "price": str(charge.price),
        "vat": None if vat is None else str(vat),
        "step_size": charge.step_size,
        "volume": str(charge.volume),
        "billed_volume": str(charge.billed_volume),
        "cost": {
            "excl_vat": str(cost.excl_vat),
            "incl_vat": None if cost.incl_vat is None else str(cost.incl_vat),
        },
        "reservation": charge.reservation,
    }


def _period(period: PeriodCharge) -> dict[str, Any]:
    return {
        "index": period.index,
        "start_date_time": _time(period.start_date_time),
        "end_date_time": _time(period.end_date_time),
        "tariff_id": period.tariff_id,
        "charges": [_charge(c) for c in period.charges],
        "unpriced": [d.value for d in period.unpriced],
    }


def discrepancy(rated: RatedCdr) -> dict[str, Any] | None:
    """The fields outside tolerance with their absolute deltas, or None when all agree."""
    comparison = rated.comparison
    if comparison.within_tolerance:
        return None
    return {
        "tolerance": str(comparison.tolerance),
        "fields": {
            f.field: {
                "excl_vat": _decimal(f.delta_excl_vat),
                "incl_vat": _decimal(f.delta_incl_vat),
            }
            for f in comparison.fields
            if not f.within_tolerance
        },
    }


def rated_cdr_json(rated: RatedCdr) -> dict[str, Any]:
    """The ``rate --json`` object (see the module docstring)."""
    document: dict[str, Any] = {field: _price(rated.totals.get(field)) for field in TOTAL_FIELDS}
    document["declared"] = {field: _price(rated.declared.get(field)) for field in TOTAL_FIELDS}
    document["discrepancy"] = discrepancy(rated)
    document["tariff"] = {
        "id": rated.tariff.id,
        "country_code": rated.tariff.country_code,
        "party_id": rated.tariff.party_id,
        "last_updated": _time(rated.tariff.last_updated),
        "content_hash": rated.tariff.content_hash,
    }
    document["cdr_id"] = rated.cdr_id
    document["currency"] = rated.currency
    document["credit"] = rated.credit
    document["time_zone"] = rated.time_zone
    document["price_limit"] = rated.price_limit
    document["periods"] = [_period(p) for p in rated.periods]
    return document
