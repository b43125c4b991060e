"""Short constructors for tariffs and CDRs in rating tests.

tariff(element(component("ENERGY", "0.25", vat="10")))
cdr(period("2024-01-15T10:00:00Z", energy="20", time="1"), end="2024-01-15T11:00:00Z")
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff


def component(kind: str, price: str, step: int = 1, vat: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"type": kind, "price": price, "step_size": step}
    if vat is not None:
        value["vat"] = vat
    return value


def element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        value["restrictions"] = restrictions
    return value


def tariff(*elements: dict[str, Any], **fields: Any) -> Tariff:
    value: dict[str, Any] = {
        "country_code": "DE",
        "party_id": "ALL",
        "id": "T1",
        "currency": "EUR",
        "last_updated": "2020-01-01T00:00:00Z",
        "elements": list(elements),
    }
    value.update(fields)
    return Tariff.model_validate(value)


_DIMENSIONS = {
    "energy": "ENERGY",
    "time": "TIME",
    "parking": "PARKING_TIME",
    "reservation": "RESERVATION_TIME",
    "min_current": "MIN_CURRENT",
    "max_current": "MAX_CURRENT",
    "min_power": "MIN_POWER",
    "max_power": "MAX_POWER",
}


def period(start: str, tariff_id: str | None = None, **volumes: str) -> dict[str, Any]:
    value: dict[str, Any] = {
        "start_date_time": start,
        "dimensions": [{"type": _DIMENSIONS[k], "volume": v} for k, v in volumes.items()],
    }
    if tariff_id is not None:
        value["tariff_id"] = tariff_id
    return value


def cdr(
    *periods: dict[str, Any],
    end: str | None = None,
    start: str | None = None,
    country: str = "DEU",
    **fields: Any,
) -> Cdr:
    first = periods[0]["start_date_time"]
    value: dict[str, Any] = {
        "country_code": "DE",
        "party_id": "ALL",
        "id": "CDR1",
        "start_date_time": start or first,
        "end_date_time": end or first,
        "cdr_token": {
            "country_code": "NL",
            "party_id": "EMS",
            "uid": "012345678",
            "type": "RFID",
            "contract_id": "NL-EMS-C12345678-X",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC1",
            "address": "Musterstrasse 1",
            "city": "Berlin",
            "country": country,
            "coordinates": {"latitude": "52.520008", "longitude": "13.404954"},
            "evse_uid": "EVSE-1",
            "evse_id": "DE*ALL*E000001",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": list(periods),
        "total_cost": {"excl_vat": "0"},
        "total_energy": "0",
        "total_time": "0",
        "last_updated": "2024-01-01T00:00:00Z",
    }
    value.update(fields)
    return Cdr.model_validate(value)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
