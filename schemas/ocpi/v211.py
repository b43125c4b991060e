"""OCPI 2.1.1 CDR and Tariff inputs, their conversion to 2.2.1, and version detection.

Some partners still send 2.1.1 (ocpi/ocpi, branch release-2.1.1-bugfixes). What differs:

- CDR: `stop_date_time` (not `end_date_time`); `auth_id`, the contract id (not a
  `cdr_token`); the full `location` with the EVSE and connector used (not a `cdr_location`);
  `total_cost` a plain number, excluding VAT (not a Price); no subtotals, credit fields or
  signed data; no `country_code`/`party_id` (the CPO is the party that sent it); dimension
  type FLAT exists; auth methods are AUTH_REQUEST and WHITELIST only.
- Tariff: no `country_code`/`party_id`, `type`, `min_price`/`max_price`,
  `start_date_time`/`end_date_time`; price components have no `vat`; restrictions have no
  current limits and no `reservation`.

Conversion (`cdr_from_v211`, `tariff_from_v211`): the owning CPO is passed in; amounts keep
their digits with `incl_vat` None (2.1.1 states no VAT); FLAT dimensions are dropped (a
2.2.1 CDR measures no FLAT volume; flat fees come from the tariff) and a period left without
dimensions with them; the CDR token is `uid = contract_id = auth_id`, type OTHER, owned by
the eMSP passed in or, failing that, the one named by the eMA-ID prefix of `auth_id`
("NL-TNM-..." -> NL*TNM). Unknown (extension) fields are not carried across versions.

`parse_cdr_any` / `parse_tariff_any` detect the version and return 2.2.1 objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal

from schemas.base import OcpiModel, json_invalid_error, loads_exact
from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.enums import (
    ConnectorFormat,
    ConnectorType,
    DayOfWeek,
    PowerType,
    Status,
    TariffDimensionType,
)
from schemas.ocpi.location import EnergyMix
from schemas.ocpi.tariff import NonNegativeInt, Tariff
from schemas.ocpi.types import (
    Amount,
    CurrencyCode,
    DateTime,
    DisplayText,
    GeoLocation,
    LocalDate,
    NonEmpty,
    NonNegativeAmount,
    NonNegativeVolume,
    String3,
    String10,
    String36,
    String39,
    String45,
    String48,
    String255,
    TimeOfDay,
    Url,
    Volume,
)
from schemas.validation import RawInput, SchemaInvalid, Violation, parse_model, violations_from

OcpiVersion = Literal["2.1.1", "2.2.1"]

_EMA_PREFIX: Final = re.compile(r"^([A-Za-z]{2})[-*]?([A-Za-z0-9]{3})")
_V221_TARIFF_FIELDS: Final = frozenset(
    {
        "country_code",
        "party_id",
        "type",
        "min_price",
        "max_price",
        "start_date_time",
        "end_date_time",
    }
)
_V211_CDR_FIELDS: Final = frozenset({"stop_date_time", "auth_id", "location"})


class AuthMethodV211(StrEnum):
    """OCPI 2.1.1 authentication methods."""

    AUTH_REQUEST = "AUTH_REQUEST"  # authentication request to the eMSP
    WHITELIST = "WHITELIST"  # whitelist, no request to the eMSP


class CdrDimensionTypeV211(StrEnum):
    """OCPI 2.1.1 CDR dimension types."""

    ENERGY = "ENERGY"  # kWh
    FLAT = "FLAT"  # flat fee, no unit (not in 2.2.1)
    MAX_CURRENT = "MAX_CURRENT"  # A, maximum reached
    MIN_CURRENT = "MIN_CURRENT"  # A, minimum used
    PARKING_TIME = "PARKING_TIME"  # hours not charging
    TIME = "TIME"  # hours charging


class LocationTypeV211(StrEnum):
    """OCPI 2.1.1 location types (2.2.1 has ParkingType instead)."""

    ON_STREET = "ON_STREET"  # parking in public space
    PARKING_GARAGE = "PARKING_GARAGE"  # multistorey car park
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"  # car park, mainly underground
    PARKING_LOT = "PARKING_LOT"  # cleared area for parking
    OTHER = "OTHER"  # none of the above
    UNKNOWN = "UNKNOWN"  # not known


class PriceComponentV211(OcpiModel):
    """2.1.1 price component: no `vat`."""

    type: TariffDimensionType
    price: NonNegativeAmount
    step_size: NonNegativeInt


class TariffRestrictionsV211(OcpiModel):
    """2.1.1 restrictions: no current limits, no reservation."""

    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    start_date: LocalDate | None = None
    end_date: LocalDate | None = None
    min_kwh: NonNegativeVolume | None = None
    max_kwh: NonNegativeVolume | None = None
    min_power: NonNegativeVolume | None = None
    max_power: NonNegativeVolume | None = None
    min_duration: NonNegativeInt | None = None
    max_duration: NonNegativeInt | None = None
    day_of_week: tuple[DayOfWeek, ...] = ()


class TariffElementV211(OcpiModel):
    """2.1.1 tariff element."""

    price_components: NonEmpty[PriceComponentV211]
    restrictions: TariffRestrictionsV211 | None = None


class TariffV211(OcpiModel):
    """An OCPI 2.1.1 Tariff."""

    id: String36
    currency: CurrencyCode
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: Url | None = None
    elements: NonEmpty[TariffElementV211]
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


class ConnectorV211(OcpiModel):
    """2.1.1 connector (`voltage`/`amperage`, one `tariff_id`)."""

    id: String36
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    voltage: int
    amperage: int
    tariff_id: String36 | None = None
    terms_and_conditions: Url | None = None
    last_updated: DateTime


class EvseV211(OcpiModel):
    """2.1.1 EVSE, reduced to what a CDR needs; other fields are kept as received."""

    uid: String39
    evse_id: String48 | None = None
    status: Status
    connectors: NonEmpty[ConnectorV211]
    last_updated: DateTime


class LocationV211(OcpiModel):
    """2.1.1 Location, reduced to what a CDR needs; other fields are kept as received."""

    id: String39
    type: LocationTypeV211
    name: String255 | None = None
    address: String45
    city: String45
    postal_code: String10
    country: String3
    coordinates: GeoLocation
    evses: tuple[EvseV211, ...] = ()
    time_zone: String255 | None = None
    last_updated: DateTime


class CdrDimensionV211(OcpiModel):
    """2.1.1 CDR dimension."""

    type: CdrDimensionTypeV211
    volume: Volume


class ChargingPeriodV211(OcpiModel):
    """2.1.1 charging period (no tariff_id)."""

    start_date_time: DateTime
    dimensions: NonEmpty[CdrDimensionV211]


class CdrV211(OcpiModel):
    """An OCPI 2.1.1 CDR."""

    id: String36
    start_date_time: DateTime
    stop_date_time: DateTime
    auth_id: String36
    auth_method: AuthMethodV211
    location: LocationV211
    meter_id: String255 | None = None
    currency: CurrencyCode
    tariffs: tuple[TariffV211, ...] = ()
    charging_periods: NonEmpty[ChargingPeriodV211]
    total_cost: Amount
    total_energy: Volume
    total_time: NonNegativeVolume
    total_parking_time: NonNegativeVolume | None = None
    remark: String255 | None = None
    last_updated: DateTime


def tariff_from_v211(tariff: TariffV211, *, owner: PartyRef) -> Tariff:
    """The 2.2.1 form of a 2.1.1 tariff published by `owner`."""
    data: dict[str, Any] = {
        "country_code": owner.country_code,
        "party_id": owner.party_id,
        "id": tariff.id,
        "currency": tariff.currency,
        "tariff_alt_text": [text.model_dump() for text in tariff.tariff_alt_text],
        "tariff_alt_url": tariff.tariff_alt_url,
        "elements": [_element_data(element) for element in tariff.elements],
        "energy_mix": tariff.energy_mix.model_dump() if tariff.energy_mix else None,
        "last_updated": tariff.last_updated,
    }
    return parse_model(Tariff, _without_none(data))


def _element_data(element: TariffElementV211) -> dict[str, Any]:
    components = [
        {"type": c.type, "price": c.price, "step_size": c.step_size}
        for c in element.price_components
    ]
    data: dict[str, Any] = {"price_components": components}
    if element.restrictions is not None:
        restrictions = TariffRestrictionsV211.model_fields.keys()
        data["restrictions"] = {name: getattr(element.restrictions, name) for name in restrictions}
    return _without_none(data)


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _token_owner(auth_id: str, emsp: PartyRef | None) -> PartyRef | None:
    if emsp is not None:
        return emsp
    match = _EMA_PREFIX.match(auth_id)
    return None if match is None else PartyRef(country_code=match[1], party_id=match[2])


def _periods_data(cdr: CdrV211) -> list[dict[str, Any]]:
    periods = []
    for period in cdr.charging_periods:
        dimensions = [
            {"type": d.type.value, "volume": d.volume}
            for d in period.dimensions
            if d.type is not CdrDimensionTypeV211.FLAT
        ]
        if dimensions:
            periods.append({"start_date_time": period.start_date_time, "dimensions": dimensions})
    return periods


def cdr_from_v211(cdr: CdrV211, *, owner: PartyRef, emsp: PartyRef | None = None) -> Cdr:
    """The 2.2.1 form of a 2.1.1 CDR sent by CPO `owner` (see the module docstring).

    Raises SchemaInvalid when the 2.1.1 CDR lacks what 2.2.1 requires (the EVSE and
    connector used, an identifiable eMSP).
    """
    problems: list[Violation] = []
    token_owner = _token_owner(cdr.auth_id, emsp)
    if token_owner is None:
        problems.append(
            Violation(
                path="auth_id",
                rule="cannot tell the eMSP from auth_id (no eMA-ID prefix); pass emsp",
                code="emsp_unknown",
            )
        )
    evse = next((e for e in cdr.location.evses), None)
    if evse is None:
        problems.append(
            Violation(path="location.evses", rule="must include the EVSE used", code="too_short")
        )
    if problems:
        raise SchemaInvalid("Cdr", problems)
    assert token_owner is not None and evse is not None
    connector = evse.connectors[0]
    location = cdr.location
    data: dict[str, Any] = {
        "country_code": owner.country_code,
        "party_id": owner.party_id,
        "id": cdr.id,
        "start_date_time": cdr.start_date_time,
        "end_date_time": cdr.stop_date_time,
        "cdr_token": {
            "country_code": token_owner.country_code,
            "party_id": token_owner.party_id,
            "uid": cdr.auth_id,
            "type": "OTHER",
            "contract_id": cdr.auth_id,
        },
        "auth_method": cdr.auth_method.value,
        "cdr_location": _without_none(
            {
                "id": location.id,
                "name": location.name,
                "address": location.address,
                "city": location.city,
                "postal_code": location.postal_code,
                "country": location.country,
                "coordinates": location.coordinates.model_dump(),
                "evse_uid": evse.uid,
                "evse_id": evse.evse_id or "#NA",
                "connector_id": connector.id,
                "connector_standard": connector.standard,
                "connector_format": connector.format,
                "connector_power_type": connector.power_type,
            }
        ),
        "meter_id": cdr.meter_id,
        "currency": cdr.currency,
        "tariffs": [tariff_from_v211(t, owner=owner).model_dump() for t in cdr.tariffs],
        "charging_periods": _periods_data(cdr),
        "total_cost": {"excl_vat": cdr.total_cost},
        "total_energy": cdr.total_energy,
        "total_time": cdr.total_time,
        "total_parking_time": cdr.total_parking_time,
        "remark": cdr.remark,
        "last_updated": cdr.last_updated,
    }
    return parse_model(Cdr, _without_none(data))


def _decode(raw: RawInput, title: str) -> Any:
    if isinstance(raw, Mapping):
        return raw
    try:
        return loads_exact(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise SchemaInvalid(title, violations_from(json_invalid_error(title, raw))) from None


def detect_cdr_version(data: Mapping[str, Any]) -> OcpiVersion:
    """2.1.1 when the CDR has a plain-number `total_cost` or a 2.1.1-only field."""
    total_cost = data.get("total_cost")
    plain_total = isinstance(total_cost, int | Decimal | float) and not isinstance(total_cost, bool)
    if plain_total or _V211_CDR_FIELDS & data.keys():
        return "2.1.1"
    return "2.2.1"


def detect_tariff_version(data: Mapping[str, Any]) -> OcpiVersion:
    """2.2.1 when the tariff has a 2.2.1-only field or a price component with `vat`."""
    if _V221_TARIFF_FIELDS & data.keys():
        return "2.2.1"
    elements = data.get("elements")
    for element in elements if isinstance(elements, list) else ():
        components = element.get("price_components") if isinstance(element, Mapping) else None
        for component in components if isinstance(components, list) else ():
            if isinstance(component, Mapping) and "vat" in component:
                return "2.2.1"
    return "2.1.1"


def _owner_required(title: str) -> SchemaInvalid:
    return SchemaInvalid(
        title,
        [
            Violation(
                path="$",
                rule="an OCPI 2.1.1 object names no party; the submitting CPO must be given",
                code="owner_unknown",
            )
        ],
    )


def parse_cdr_any(
    raw: RawInput, *, owner: PartyRef | None = None, emsp: PartyRef | None = None
) -> Cdr:
    """A 2.2.1 CDR from 2.2.1 or 2.1.1 input; `owner` (the sending CPO) is needed for
    2.1.1. Raises SchemaInvalid with every violation."""
    data = _decode(raw, "Cdr")
    if not isinstance(data, Mapping) or detect_cdr_version(data) == "2.2.1":
        return parse_model(Cdr, data)
    v211 = parse_model(CdrV211, data)
    if owner is None:
        raise _owner_required("CdrV211")
    return cdr_from_v211(v211, owner=owner, emsp=emsp)


def parse_tariff_any(raw: RawInput, *, owner: PartyRef | None = None) -> Tariff:
    """A 2.2.1 Tariff from 2.2.1 or 2.1.1 input; `owner` is needed for 2.1.1."""
    data = _decode(raw, "Tariff")
    if not isinstance(data, Mapping) or detect_tariff_version(data) == "2.2.1":
        return parse_model(Tariff, data)
    v211 = parse_model(TariffV211, data)
    if owner is None:
        raise _owner_required("TariffV211")
    return tariff_from_v211(v211, owner=owner)
