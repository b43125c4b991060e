"""The CPOs' locations and the sites (EVSE + connector + tariff + zone) sessions happen at.

Each CPO has two to four locations in the cities of its country, each with two to four EVSEs
of one connector: AC (Type 2 socket, 22 kW) priced by the CPO's AC tariff, or DC (CCS cable,
50 to 300 kW) priced by its DC tariff. The French CPO also has a site in Réunion
(Indian/Reunion, UTC+4). A `Site` carries what a CDR needs from its EVSE, precomputed once:
the `cdr_location` object in wire form, the tariff (model and wire form) and the zone.

    NL*TLP LOC-AMS-0001 "Stationsplein 12", Amsterdam, Europe/Amsterdam
        EVSE NL*TLP*E0001*1 (AC 22 kW, tariff AC-STANDARD), NL*TLP*E0001*2 (DC 150 kW, ...)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel

from pipeline.simulate.partners import REUNION, Country, Partner, country_of
from pipeline.simulate.tariffs import DC_FAST_ID, REUNION_AC_ID, boundaries, uses_weekdays
from schemas.ocpi.cdr import CdrLocation
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import to_ocpi_json

LOCATIONS_PER_CPO: Final = (2, 4)  # inclusive range
EVSES_PER_LOCATION: Final = (2, 4)
_MICRO: Final = Decimal("0.000001")  # degrees
DC_POWERS_W: Final = (50_000, 150_000, 300_000)
AC_POWER_W: Final = 22_000


@dataclass(frozen=True, slots=True)
class Site:
    """One EVSE and connector where sessions happen, with its tariff and zone."""

    index: int  # position among the scenario's sites
    cpo_index: int
    location_id: str
    cdr_location: orjson.Fragment  # encoded once, as `to_ocpi_json` writes it
    cdr_location_model: CdrLocation
    tariff: Tariff
    tariff_wire: orjson.Fragment  # the tariff, encoded once, for CDRs that embed it
    zone: ZoneInfo
    boundaries: tuple[int, ...]  # local seconds of day where tariff elements change
    uses_weekdays: bool  # the tariff has day_of_week restrictions
    is_dc: bool
    power_max_w: int


def _connector(is_dc: bool, power_w: int, tariff_id: str, updated: datetime) -> dict[str, Any]:
    voltage, amperage = (920, power_w // 920) if is_dc else (400, 32)
    return {
        "id": "1",
        "standard": "IEC_62196_T2_COMBO" if is_dc else "IEC_62196_T2",
        "format": "CABLE" if is_dc else "SOCKET",
        "power_type": "DC" if is_dc else "AC_3_PHASE",
        "max_voltage": voltage,
        "max_amperage": amperage,
        "max_electric_power": power_w,
        "tariff_ids": [tariff_id],
        "last_updated": updated,
    }


def _location(
    cpo: Partner, number: int, country: Country, rng: random.Random,
    tariffs: tuple[Tariff, Tariff | None], updated: datetime,
) -> Location:  # fmt: skip
    city = rng.choice(country.cities)
    ac_tariff, dc_tariff = tariffs
    party = cpo.party
    location_id = f"LOC-{city.code}-{number:04d}"
    evses = []
    for evse_number in range(1, rng.randint(*EVSES_PER_LOCATION) + 1):
        is_dc = dc_tariff is not None and rng.randrange(3) == 0
        power_w = rng.choice(DC_POWERS_W) if is_dc else AC_POWER_W
        tariff = dc_tariff if is_dc and dc_tariff is not None else ac_tariff
        evses.append(
            {
                "uid": f"{location_id}-{evse_number}",
                "evse_id": f"{party.country_code}*{party.party_id}*E{number:04d}*{evse_number}",
                "status": "AVAILABLE",
                "connectors": [_connector(is_dc, power_w, tariff.id, updated)],
                "last_updated": updated,
            }
        )
    offset = rng.randrange(-9000, 9000)  # ~1 km around the city's reference point
    return Location.model_validate(
        {
            "country_code": party.country_code,
            "party_id": party.party_id,
            "id": location_id,
            "publish": True,
            "name": f"{city.street} {cpo.name.split()[0]}",
            "address": f"{city.street} {rng.randint(1, 120)}",
            "city": city.name,
            "postal_code": city.postal_code,
            "country": country.alpha3,
            "coordinates": {
                "latitude": f"{city.latitude + offset * _MICRO:.6f}",
                "longitude": f"{city.longitude - offset * _MICRO:.6f}",
            },
            "parking_type": rng.choice(("ON_STREET", "PARKING_LOT", "PARKING_GARAGE")),
            "evses": evses,
            "time_zone": country.time_zone,
            "last_updated": updated,
        }
    )


def build_locations(
    cpo: Partner, first_number: int, tariffs: tuple[Tariff, ...], rng: random.Random,
    updated: datetime,
) -> tuple[Location, ...]:  # fmt: skip
    """A CPO's locations, numbered from `first_number` (unique ids across the scenario)."""
    by_id = {t.id: t for t in tariffs}
    ac, dc = tariffs[0], by_id.get(DC_FAST_ID)
    country = country_of(cpo)
    count = rng.randint(*LOCATIONS_PER_CPO)
    locations = [
        _location(cpo, first_number + n, country, rng, (ac, dc), updated) for n in range(count)
    ]
    reunion_tariff = by_id.get(REUNION_AC_ID)
    if reunion_tariff is not None:
        number = first_number + count
        locations.append(_location(cpo, number, REUNION, rng, (reunion_tariff, None), updated))
    return tuple(locations)


def _wire(model: BaseModel) -> orjson.Fragment:
    return orjson.Fragment(to_ocpi_json(model))


def build_sites(
    first_index: int, cpo_index: int, locations: tuple[Location, ...], tariffs: tuple[Tariff, ...]
) -> tuple[Site, ...]:
    """Every EVSE of a CPO's locations as a Site."""
    by_id = {t.id: t for t in tariffs}
    wire = {t.id: _wire(t) for t in tariffs}
    sites: list[Site] = []
    for location in locations:
        zone = ZoneInfo(location.time_zone)
        for evse in location.evses:
            connector = evse.connectors[0]
            tariff = by_id[connector.tariff_ids[0]]
            assert evse.evse_id is not None
            cdr_location = CdrLocation(
                id=location.id,
                name=location.name,
                address=location.address,
                city=location.city,
                postal_code=location.postal_code,
                country=location.country,
                coordinates=location.coordinates,
                evse_uid=evse.uid,
                evse_id=evse.evse_id,
                connector_id=connector.id,
                connector_standard=connector.standard,
                connector_format=connector.format,
                connector_power_type=connector.power_type,
            )
            sites.append(
                Site(
                    index=first_index + len(sites),
                    cpo_index=cpo_index,
                    location_id=location.id,
                    cdr_location=_wire(cdr_location),
                    cdr_location_model=cdr_location,
                    tariff=tariff,
                    tariff_wire=wire[tariff.id],
                    zone=zone,
                    boundaries=boundaries(tariff),
                    uses_weekdays=uses_weekdays(tariff),
                    is_dc=connector.power_type == "DC",
                    power_max_w=connector.max_electric_power or AC_POWER_W,
                )
            )
    return tuple(sites)
