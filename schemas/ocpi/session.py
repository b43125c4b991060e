"""OCPI 2.2.1 Session (mod_sessions.asciidoc): a charging session while it runs.

The hub keeps sessions per id to notice a session that ended without a CDR. Its charging
periods reuse the CDR's `ChargingPeriod`, where the session-only dimensions (CURRENT,
POWER, STATE_OF_CHARGE, ENERGY_IMPORT, ENERGY_EXPORT) may appear.
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from schemas.base import OcpiModel, rule_error
from schemas.ocpi.cdr import CdrToken, ChargingPeriod
from schemas.ocpi.enums import AuthMethod, SessionStatus
from schemas.ocpi.types import (
    CiString36,
    CountryCode,
    CurrencyCode,
    DateTime,
    NonNegativeVolume,
    PartyId,
    Price,
    String255,
)


class Session(OcpiModel):
    """An OCPI 2.2.1 Session as a CPO sends it (PUT; a PATCH is merged before parsing)."""

    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: NonNegativeVolume
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: CiString36 | None = None
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36
    meter_id: String255 | None = None
    currency: CurrencyCode
    charging_periods: tuple[ChargingPeriod, ...] = ()
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: DateTime

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end_date_time is not None and self.end_date_time < self.start_date_time:
            raise rule_error("end_date_time", "date_order", "must not be before start_date_time")
        return self
