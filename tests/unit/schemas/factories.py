"""Short constructors of valid OCPI and hub data for schema tests (plain JSON-like dicts)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

CDR: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "TNM",
    "id": "CDR-0001",
    "start_date_time": "2025-03-01T10:00:00Z",
    "end_date_time": "2025-03-01T11:11:00Z",
    "session_id": "SESSION-1",
    "cdr_token": {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "04A1B2C3",
        "type": "RFID",
        "contract_id": "DE-EMS-C12345678-X",
    },
    "auth_method": "AUTH_REQUEST",
    "authorization_reference": "AUTH-1",
    "cdr_location": {
        "id": "LOC1",
        "name": "Main Street",
        "address": "Main Street 1",
        "city": "Utrecht",
        "postal_code": "3511AA",
        "country": "NLD",
        "coordinates": {"latitude": "52.090736", "longitude": "5.121420"},
        "evse_uid": "EVSE-1",
        "evse_id": "NL*TNM*E0001",
        "connector_id": "1",
        "connector_standard": "IEC_62196_T2",
        "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    },
    "meter_id": "M-1",
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2025-03-01T10:00:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": Decimal("5.5")},
                {"type": "TIME", "volume": Decimal("0.5")},
            ],
            "tariff_id": "T1",
        },
        {
            "start_date_time": "2025-03-01T10:30:00Z",
            "dimensions": [{"type": "TIME", "volume": Decimal("0.5")}],
            "tariff_id": "T1",
        },
        {
            "start_date_time": "2025-03-01T11:00:00Z",
            "dimensions": [{"type": "PARKING_TIME", "volume": Decimal("0.183333")}],
            "tariff_id": "T1",
        },
    ],
    "total_cost": {"excl_vat": Decimal("3.2750"), "incl_vat": Decimal("3.9628")},
    "total_fixed_cost": {"excl_vat": Decimal("0.50"), "incl_vat": Decimal("0.605")},
    "total_energy": Decimal("5.5"),
    "total_energy_cost": {"excl_vat": Decimal("1.375")},
    "total_time": Decimal("1.183333"),
    "total_time_cost": {"excl_vat": Decimal("1.00")},
    "total_parking_time": Decimal("0.183333"),
    "total_parking_cost": {"excl_vat": Decimal("0.40")},
    "remark": "ok",
    "last_updated": "2025-03-01T11:12:00Z",
}

TARIFF: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "TNM",
    "id": "T1",
    "currency": "EUR",
    "type": "REGULAR",
    "tariff_alt_text": [{"language": "en", "text": "0.25/kWh, 1.00/h"}],
    "min_price": {"excl_vat": Decimal("0.50"), "incl_vat": Decimal("0.605")},
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": Decimal("0.25"), "vat": Decimal("21"), "step_size": 1},
                {"type": "TIME", "price": Decimal("1.00"), "vat": Decimal("21"), "step_size": 60},
            ],
            "restrictions": {
                "start_time": "08:00",
                "end_time": "20:00",
                "start_date": "2025-01-01",
                "min_kwh": Decimal("0.5"),
                "max_power": Decimal("22"),
                "min_duration": 60,
                "day_of_week": ["MONDAY", "SATURDAY"],
            },
        },
        {"price_components": [{"type": "FLAT", "price": Decimal("0.50"), "step_size": 1}]},
    ],
    "energy_mix": {
        "is_green_energy": False,
        "energy_sources": [{"source": "WIND", "percentage": Decimal("60")}],
        "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": Decimal("120.5")}],
    },
    "last_updated": "2025-01-01T00:00:00Z",
}

LOCATION: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "TNM",
    "id": "LOC1",
    "publish": True,
    "name": "Main Street",
    "address": "Main Street 1",
    "city": "Utrecht",
    "postal_code": "3511AA",
    "country": "NLD",
    "coordinates": {"latitude": "52.090736", "longitude": "5.121420"},
    "time_zone": "Europe/Amsterdam",
    "evses": [
        {
            "uid": "EVSE-1",
            "evse_id": "NL*TNM*E0001",
            "status": "AVAILABLE",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 32,
                    "tariff_ids": ["T1"],
                    "last_updated": "2025-01-01T00:00:00Z",
                }
            ],
            "last_updated": "2025-01-01T00:00:00Z",
        }
    ],
    "opening_times": {"twentyfourseven": True},
    "last_updated": "2025-01-01T00:00:00Z",
}

SESSION: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "TNM",
    "id": "SESSION-1",
    "start_date_time": "2025-03-01T10:00:00Z",
    "kwh": Decimal("5.5"),
    "cdr_token": CDR["cdr_token"],
    "auth_method": "AUTH_REQUEST",
    "location_id": "LOC1",
    "evse_uid": "EVSE-1",
    "connector_id": "1",
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2025-03-01T10:00:00Z",
            "dimensions": [
                {"type": "POWER", "volume": Decimal("-3.2")},
                {"type": "STATE_OF_CHARGE", "volume": Decimal("61")},
            ],
        }
    ],
    "status": "ACTIVE",
    "last_updated": "2025-03-01T10:05:00Z",
}

TOKEN: dict[str, Any] = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "04A1B2C3",
    "type": "RFID",
    "contract_id": "DE-EMS-C12345678-X",
    "issuer": "EMS Mobility",
    "valid": True,
    "whitelist": "ALLOWED",
    "language": "de",
    "last_updated": "2025-01-01T00:00:00Z",
}


def build(template: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A deep copy of `template` with top-level fields replaced."""
    data = copy.deepcopy(template)
    data.update(overrides)
    return data
