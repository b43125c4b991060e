"""OCPI wire objects: 2.2.1 models (CDR, Tariff, Session, Location, Token), 2.1.1 inputs and
their conversion, and exact JSON output."""

from schemas.ocpi.cdr import (
    Cdr,
    CdrDimension,
    CdrLocation,
    CdrToken,
    ChargingPeriod,
    SignedData,
    SignedValue,
)
from schemas.ocpi.location import Connector, EnergyMix, Evse, Location
from schemas.ocpi.session import Session
from schemas.ocpi.tariff import PriceComponent, Tariff, TariffElement, TariffRestrictions
from schemas.ocpi.token import Token
from schemas.ocpi.types import DisplayText, GeoLocation, Price

__all__ = [
    "Cdr",
    "CdrDimension",
    "CdrLocation",
    "CdrToken",
    "ChargingPeriod",
    "Connector",
    "DisplayText",
    "EnergyMix",
    "Evse",
    "GeoLocation",
    "Location",
    "Price",
    "PriceComponent",
    "Session",
    "SignedData",
    "SignedValue",
    "Tariff",
    "TariffElement",
    "TariffRestrictions",
    "Token",
]
