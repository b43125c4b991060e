"""OCPI 2.1.1 inputs: parsing, conversion to 2.2.1, version detection."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas.hub.party import PartyRef
from schemas.ocpi.enums import TokenType
from schemas.ocpi.v211 import (
    CdrV211,
    TariffV211,
    cdr_from_v211,
    detect_cdr_version,
    detect_tariff_version,
    parse_cdr_any,
    parse_tariff_any,
    tariff_from_v211,
)
from schemas.validation import SchemaInvalid
from tests.unit.schemas.factories import CDR

OWNER = PartyRef.parse("NL*TNM")

TARIFF_211: dict[str, Any] = {
    "id": "12",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "TIME", "price": Decimal("2.00"), "step_size": 300}],
            "restrictions": {"start_time": "08:00", "max_duration": 3600},
        }
    ],
    "last_updated": "2015-02-02T14:15:01Z",
}

CDR_211: dict[str, Any] = {
    "id": "12345",
    "start_date_time": "2015-06-29T21:39:09Z",
    "stop_date_time": "2015-06-29T23:37:32Z",
    "auth_id": "DE8ACC12E46L89",
    "auth_method": "WHITELIST",
    "location": {
        "id": "LOC1",
        "type": "ON_STREET",
        "address": "F.Rooseveltlaan 3A",
        "city": "Gent",
        "postal_code": "9000",
        "country": "BEL",
        "coordinates": {"latitude": "3.729944", "longitude": "51.047599"},
        "evses": [
            {
                "uid": "3256",
                "evse_id": "BE*BEC*E041503003",
                "status": "AVAILABLE",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_1_PHASE",
                        "voltage": 230,
                        "amperage": 64,
                        "last_updated": "2015-03-16T10:10:02Z",
                    }
                ],
                "last_updated": "2015-06-29T21:39:01Z",
            }
        ],
        "last_updated": "2015-06-29T21:39:01Z",
    },
    "currency": "EUR",
    "tariffs": [TARIFF_211],
    "charging_periods": [
        {
            "start_date_time": "2015-06-29T21:39:09Z",
            "dimensions": [
                {"type": "TIME", "volume": Decimal("1.973")},
                {"type": "FLAT", "volume": 1},
            ],
        },
        {"start_date_time": "2015-06-29T23:37:00Z", "dimensions": [{"type": "FLAT", "volume": 1}]},
    ],
    "total_cost": Decimal("4.00"),
    "total_energy": Decimal("15.342"),
    "total_time": Decimal("1.973"),
    "last_updated": "2015-06-29T22:01:13Z",
}


def test_tariff_conversion_keeps_prices_and_has_no_vat() -> None:
    tariff = tariff_from_v211(TariffV211.model_validate(TARIFF_211), owner=OWNER)
    component = tariff.elements[0].price_components[0]
    assert (tariff.country_code, tariff.party_id) == ("NL", "TNM")
    assert component.price == Decimal("2.00")
    assert component.vat is None
    assert tariff.elements[0].restrictions is not None
    assert tariff.elements[0].restrictions.max_duration == 3600


def test_cdr_conversion() -> None:
    cdr = cdr_from_v211(CdrV211.model_validate(CDR_211), owner=OWNER)
    assert cdr.total_cost.excl_vat == Decimal("4.00")
    assert cdr.total_cost.incl_vat is None
    assert cdr.end_date_time.isoformat() == "2015-06-29T23:37:32+00:00"
    assert cdr.cdr_token.uid == cdr.cdr_token.contract_id == "DE8ACC12E46L89"
    assert cdr.cdr_token.type is TokenType.OTHER
    assert (cdr.cdr_token.country_code, cdr.cdr_token.party_id) == ("DE", "8AC")
    assert cdr.cdr_location.evse_id == "BE*BEC*E041503003"
    assert cdr.cdr_location.connector_power_type.value == "AC_1_PHASE"
    # FLAT volumes are dropped, and with them the period that had nothing else.
    assert len(cdr.charging_periods) == 1
    assert [d.type.value for d in cdr.charging_periods[0].dimensions] == ["TIME"]
    assert cdr.tariffs[0].party_id == "TNM"


def test_cdr_conversion_takes_the_emsp_when_given() -> None:
    emsp = PartyRef.parse("DE*EMS")
    cdr = cdr_from_v211(CdrV211.model_validate(CDR_211), owner=OWNER, emsp=emsp)
    assert (cdr.cdr_token.country_code, cdr.cdr_token.party_id) == ("DE", "EMS")


def test_cdr_conversion_needs_the_evse() -> None:
    data = dict(CDR_211, location=dict(CDR_211["location"], evses=[]), auth_id="#NA")
    with pytest.raises(SchemaInvalid) as caught:
        cdr_from_v211(CdrV211.model_validate(data), owner=OWNER)
    assert {v.path for v in caught.value.violations} == {"auth_id", "location.evses"}


def test_version_detection() -> None:
    assert detect_cdr_version(CDR_211) == "2.1.1"
    assert detect_cdr_version(CDR) == "2.2.1"
    assert detect_tariff_version(TARIFF_211) == "2.1.1"
    assert detect_tariff_version(dict(TARIFF_211, country_code="NL")) == "2.2.1"


def test_parse_any_converts_211_and_passes_221_through() -> None:
    assert parse_cdr_any(CDR_211, owner=OWNER).id == "12345"
    assert parse_cdr_any(CDR).id == "CDR-0001"
    assert parse_tariff_any(TARIFF_211, owner=OWNER).id == "12"


def test_parse_any_needs_the_owner_for_211() -> None:
    with pytest.raises(SchemaInvalid) as caught:
        parse_cdr_any(CDR_211)
    assert caught.value.violations[0].code == "owner_unknown"


def test_parse_any_reports_211_violations() -> None:
    with pytest.raises(SchemaInvalid) as caught:
        parse_cdr_any(dict(CDR_211, auth_method="COMMAND"), owner=OWNER)
    assert [v.path for v in caught.value.violations] == ["auth_method"]
    with pytest.raises(SchemaInvalid) as caught:
        parse_cdr_any(b"[1,", owner=OWNER)
    assert caught.value.violations[0].code == "json_invalid"
