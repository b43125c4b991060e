"""Sessions for unit tests: a valid OCPI 2.2.1 Session of NL*TNM, and charging periods."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from schemas.hub.party import PartyRef
from settlement.sessions.push import SessionRef

TNM = PartyRef.parse("NL*TNM")
REF = SessionRef(TNM, "SES-1")


def session(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "TNM",
        "id": "SES-1",
        "start_date_time": "2026-03-04T10:00:00Z",
        "kwh": Decimal("0"),
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMP",
            "uid": "u1",
            "type": "RFID",
            "contract_id": "DE-EMP-C1",
        },
        "auth_method": "WHITELIST",
        "location_id": "LOC1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-03-04T10:00:00Z",
        "x_vendor": "kept",
    }
    document.update(copy.deepcopy(changes))
    return document


def period(minute: int, kwh: str = "0.5") -> dict[str, Any]:
    return {
        "start_date_time": f"2026-03-04T10:{minute:02d}:00Z",
        "dimensions": [{"type": "ENERGY", "volume": Decimal(kwh)}],
    }
