"""OCPI 2.2.1 Tariff (mod_tariffs.asciidoc): elements, price components, restrictions.

A tariff is a list of elements; the first element whose restrictions hold at a moment of the
session prices each dimension there. Prices exclude VAT; `vat` is a percentage, and an
absent `vat` means "no VAT applies" (which is not the same as 0 %).

Example: 0.25 EUR per kWh (ex VAT), billed per Wh, plus 10 % VAT::

    {"country_code": "DE", "party_id": "ALL", "id": "16", "currency": "EUR",
     "elements": [{"price_components": [
         {"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}]}],
     "last_updated": "2018-12-17T11:16:55Z"}

Restriction times (`start_time`, `end_time`, `start_date`, `end_date`, `day_of_week`) are in
the location's local time and stay strings here; rating interprets them with the zone.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from schemas.base import OcpiModel, rule_error
from schemas.ocpi.enums import (
    DayOfWeek,
    ReservationRestrictionType,
    TariffDimensionType,
    TariffType,
)
from schemas.ocpi.location import EnergyMix
from schemas.ocpi.types import (
    CiString36,
    CountryCode,
    CurrencyCode,
    DateTime,
    DisplayText,
    LocalDate,
    NonEmpty,
    NonNegativeAmount,
    NonNegativeVolume,
    PartyId,
    Price,
    TimeOfDay,
    Url,
)

NonNegativeInt = Annotated[int, Field(ge=0)]


class PriceComponent(OcpiModel):
    """How one dimension is priced: price per unit ex VAT, billed in `step_size` blocks
    (Wh for ENERGY, seconds for TIME and PARKING_TIME)."""

    type: TariffDimensionType
    price: NonNegativeAmount
    vat: NonNegativeAmount | None = None
    step_size: NonNegativeInt


class TariffRestrictions(OcpiModel):
    """When a tariff element applies. Every given restriction must hold."""

    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    start_date: LocalDate | None = None
    end_date: LocalDate | None = None
    min_kwh: NonNegativeVolume | None = None
    max_kwh: NonNegativeVolume | None = None
    min_current: NonNegativeVolume | None = None
    max_current: NonNegativeVolume | None = None
    min_power: NonNegativeVolume | None = None
    max_power: NonNegativeVolume | None = None
    min_duration: NonNegativeInt | None = None  # seconds, inclusive
    max_duration: NonNegativeInt | None = None  # seconds, exclusive
    day_of_week: tuple[DayOfWeek, ...] = ()
    reservation: ReservationRestrictionType | None = None


class TariffElement(OcpiModel):
    """Price components that apply together, under optional restrictions."""

    price_components: NonEmpty[PriceComponent]
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    """A CPO's tariff, as published (Tariffs module) or embedded in a CDR."""

    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    currency: CurrencyCode
    type: TariffType | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: Url | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: NonEmpty[TariffElement]
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _validity_window_ordered(self) -> Self:
        if (
            self.start_date_time is not None
            and self.end_date_time is not None
            and self.end_date_time < self.start_date_time
        ):
            raise rule_error("end_date_time", "date_order", "must not be before start_date_time")
        return self
