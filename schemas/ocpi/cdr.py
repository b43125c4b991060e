"""OCPI 2.2.1 CDR, the charge detail record (mod_cdrs.asciidoc), with every field.

A CDR is immutable once sent; a correction is a credit CDR (`credit: true`) that references
the original by `credit_reference_id` and carries the original's `total_cost` negated. So
totals may be negative, volumes of time and of imported energy may not.

Example (the specification's, abridged): 1.973 h charging at 2.00 EUR/h, billed per 5 min::

    {"country_code": "BE", "party_id": "BEC", "id": "12345",
     "start_date_time": "2015-06-29T21:39:09Z", "end_date_time": "2015-06-29T23:37:32Z",
     "cdr_token": {...}, "auth_method": "WHITELIST", "cdr_location": {...},
     "currency": "EUR",
     "charging_periods": [{"start_date_time": "2015-06-29T21:39:09Z",
                           "dimensions": [{"type": "TIME", "volume": 1.973}],
                           "tariff_id": "12"}],
     "total_cost": {"excl_vat": 4.00, "incl_vat": 4.40},
     "total_energy": 15.342, "total_time": 1.973, "total_time_cost": {"excl_vat": 4.00},
     "last_updated": "2015-06-29T22:01:13Z"}

Rules enforced beyond types and cardinality: `end_date_time >= start_date_time`; a credit
CDR names `credit_reference_id`; a non-credit CDR id has at most 36 characters (39 are
allowed only for credit CDRs, which may append a suffix); volumes that measure time,
imported energy or maxima are >= 0 (ENERGY, CURRENT, POWER, MIN_* may be negative: energy fed
back into the grid); STATE_OF_CHARGE is 0..100.
"""

from __future__ import annotations

from typing import Annotated, Final, Self

from pydantic import AfterValidator, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import OcpiModel, rule_error
from schemas.ocpi.enums import (
    AuthMethod,
    CdrDimensionType,
    ConnectorFormat,
    ConnectorType,
    PowerType,
    TokenType,
)
from schemas.ocpi.tariff import Tariff
from schemas.ocpi.types import (
    CiString32,
    CiString36,
    CiString39,
    CiString48,
    CountryCode,
    CurrencyCode,
    DateTime,
    GeoLocation,
    NonEmpty,
    NonNegativeVolume,
    PartyId,
    Price,
    String3,
    String10,
    String20,
    String45,
    String255,
    String512,
    String5000,
    Volume,
)

CDR_ID_LENGTH_MAX: Final = 36  # a non-credit CDR; credit CDRs may use 39
CHARGING_PERIODS_MAX: Final = 10_000  # a bound on work per CDR; real CDRs have a few dozen

# Dimensions whose volume can be negative (energy or power flowing from the EV to the grid).
SIGNED_DIMENSIONS: Final = frozenset(
    {
        CdrDimensionType.ENERGY,
        CdrDimensionType.CURRENT,
        CdrDimensionType.POWER,
        CdrDimensionType.MIN_CURRENT,
        CdrDimensionType.MIN_POWER,
    }
)


def _bounded_periods(periods: tuple[ChargingPeriod, ...]) -> tuple[ChargingPeriod, ...]:
    if len(periods) > CHARGING_PERIODS_MAX:
        raise PydanticCustomError(
            "too_long", "at most {max_length} elements", {"max_length": CHARGING_PERIODS_MAX}
        )
    return periods


class CdrDimension(OcpiModel):
    """One measured quantity of a charging period (unit given by `type`)."""

    type: CdrDimensionType
    volume: Volume

    @field_validator("volume")
    @classmethod
    def _volume_in_range(cls, volume: Volume, info: ValidationInfo) -> Volume:
        kind = info.data.get("type")
        if kind is None or kind in SIGNED_DIMENSIONS:
            return volume
        if volume < 0:
            raise PydanticCustomError("greater_than_equal", "must be >= 0", {"ge": 0})
        if kind is CdrDimensionType.STATE_OF_CHARGE and volume > 100:
            raise PydanticCustomError("less_than_equal", "must be <= 100", {"le": 100})
        return volume


class ChargingPeriod(OcpiModel):
    """A stretch of the session with constant tariff and conditions; it ends where the next
    one starts, the last one at the CDR's end."""

    start_date_time: DateTime
    dimensions: NonEmpty[CdrDimension]
    tariff_id: CiString36 | None = None


class CdrToken(OcpiModel):
    """The token that started the session, identifying the eMSP and its contract."""

    country_code: CountryCode
    party_id: PartyId
    uid: CiString36
    type: TokenType
    contract_id: CiString36


class CdrLocation(OcpiModel):
    """The location as it was at the session, reduced to the EVSE and connector used."""

    id: CiString36
    name: String255 | None = None
    address: String45
    city: String45
    postal_code: String10 | None = None
    state: String20 | None = None
    country: String3
    coordinates: GeoLocation
    evse_uid: CiString36
    evse_id: CiString48
    connector_id: CiString36
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType


class SignedValue(OcpiModel):
    """One signed meter value (Start, End or Intermediate)."""

    nature: CiString32
    plain_data: String5000
    signed_data: String5000


class SignedData(OcpiModel):
    """Calibration-law signed meter values of the session."""

    encoding_method: CiString36
    encoding_method_version: int | None = None
    public_key: String512 | None = None
    signed_values: NonEmpty[SignedValue]
    url: String512 | None = None


class Cdr(OcpiModel):
    """An OCPI 2.2.1 CDR as a CPO sends it."""

    country_code: CountryCode
    party_id: PartyId
    id: CiString39
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: CiString36 | None = None
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: CiString36 | None = None
    cdr_location: CdrLocation
    meter_id: String255 | None = None
    currency: CurrencyCode
    tariffs: tuple[Tariff, ...] = ()
    charging_periods: Annotated[NonEmpty[ChargingPeriod], AfterValidator(_bounded_periods)]
    signed_data: SignedData | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Volume
    total_energy_cost: Price | None = None
    total_time: NonNegativeVolume
    total_time_cost: Price | None = None
    total_parking_time: NonNegativeVolume | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: String255 | None = None
    invoice_reference_id: CiString39 | None = None
    credit: bool | None = None
    credit_reference_id: CiString39 | None = None
    home_charging_compensation: bool | None = None
    last_updated: DateTime

    @property
    def is_credit(self) -> bool:
        """True for a credit CDR (which reverses the CDR named by `credit_reference_id`)."""
        return self.credit is True

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        if self.end_date_time < self.start_date_time:
            raise rule_error("end_date_time", "date_order", "must not be before start_date_time")
        if self.is_credit and self.credit_reference_id is None:
            raise rule_error(
                "credit_reference_id", "missing", "field required for a credit CDR (credit=true)"
            )
        if not self.is_credit and len(self.id) > CDR_ID_LENGTH_MAX:
            raise rule_error(
                "id",
                "string_too_long",
                f"at most {CDR_ID_LENGTH_MAX} characters for a non-credit CDR",
            )
        return self
