"""OCPI 2.2.1 Location, EVSE, Connector and EnergyMix (mod_locations.asciidoc).

The hub needs a location for its `time_zone`: tariff restrictions (`start_time`,
`day_of_week`, ...) are in the location's local time, and a CDR does not carry the zone.
The fields the hub reads are typed; the rest of the object (opening times, images,
operator details, ...) is kept as received, since `OcpiModel` keeps unknown fields.

Example (abridged)::

    {"country_code": "BE", "party_id": "BEC", "id": "LOC1", "publish": true,
     "address": "F.Rooseveltlaan 3A", "city": "Gent", "postal_code": "9000",
     "country": "BEL", "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
     "time_zone": "Europe/Brussels", "evses": [...], "last_updated": "2015-06-28T08:12:01Z"}
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from schemas.base import OcpiModel
from schemas.ocpi.enums import (
    ConnectorFormat,
    ConnectorType,
    EnergySourceCategory,
    EnvironmentalImpactCategory,
    ParkingType,
    PowerType,
    Status,
)
from schemas.ocpi.types import (
    CiString36,
    CiString48,
    CountryCode,
    DateTime,
    GeoLocation,
    NonEmpty,
    NonNegativeVolume,
    PartyId,
    String3,
    String4,
    String10,
    String16,
    String45,
    String64,
    String255,
    Url,
)


def _iana_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "time_zone", "must be an IANA time zone such as Europe/Amsterdam"
        ) from None
    return value


TimeZoneName = Annotated[String255, AfterValidator(_iana_zone)]


class EnergySource(OcpiModel):
    """Share of one kind of source in an energy mix, in percent."""

    source: EnergySourceCategory
    percentage: Annotated[NonNegativeVolume, Field(le=100)]


class EnvironmentalImpact(OcpiModel):
    """Grams per kWh of one environmental impact."""

    category: EnvironmentalImpactCategory
    amount: NonNegativeVolume


class EnergyMix(OcpiModel):
    """Where the energy of a location or tariff comes from."""

    is_green_energy: bool
    energy_sources: tuple[EnergySource, ...] = ()
    environ_impact: tuple[EnvironmentalImpact, ...] = ()
    supplier_name: String64 | None = None
    energy_product_name: String64 | None = None


class Connector(OcpiModel):
    """One connector of an EVSE."""

    id: CiString36
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None
    tariff_ids: tuple[CiString36, ...] = ()
    terms_and_conditions: Url | None = None
    last_updated: DateTime


class Evse(OcpiModel):
    """An EVSE: one vehicle can charge at a time, through one of its connectors."""

    uid: CiString36
    evse_id: CiString48 | None = None
    status: Status
    connectors: NonEmpty[Connector]
    floor_level: String4 | None = None
    coordinates: GeoLocation | None = None
    physical_reference: String16 | None = None
    last_updated: DateTime


class Location(OcpiModel):
    """A charging location of a CPO."""

    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    publish: bool
    name: String255 | None = None
    address: String255
    city: String45
    postal_code: String10 | None = None
    state: String45 | None = None
    country: String3
    coordinates: GeoLocation
    parking_type: ParkingType | None = None
    evses: tuple[Evse, ...] = ()
    time_zone: TimeZoneName
    charging_when_closed: bool | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime
