"""OCPI 2.2.1 basic types (types.asciidoc): strings, numbers, DateTime, DisplayText, Price.

Strings
    `CiString(n)` is printable ASCII of at most n characters, `string(n)` printable UTF-8
    (no control characters). Each used length has its own alias (`CiString36`, `String255`).

Numbers
    OCPI numbers are JSON numbers with "4 decimals unless mentioned otherwise". roamclear
    reads them as `Decimal`, never as a binary float: a Python `float` handed to a model is
    refused (`float_refused`), because its binary expansion is not the number the partner
    sent. Decode JSON with `schemas.base.loads_exact` or `Model.model_validate_json`.

    - `Amount`: money and percentages (`Price.excl_vat`, `PriceComponent.price`, `vat`,
      `min_price`): at most 4 decimals, at most 20 digits (numeric(20,4) in PostgreSQL).
    - `Volume`: quantities and durations (dimension volumes, `total_energy`, `total_time`,
      kWh/power/current restrictions): at most `VOLUME_DECIMALS_MAX` decimals. OCPI gives
      times in decimal hours, which 4 decimals cannot hold exactly (1 h 11 min = 1.183333 h;
      the public corpus sends such volumes), so volumes keep the digits they were sent with.

DateTime
    RFC 3339 with an explicit offset (`Z` or `+01:00`), normalised to UTC. OCPI 2.2.1 says a
    missing designator "implies UTC"; roamclear refuses it instead, so that a local wall-clock
    time is never booked as UTC by accident. Written back as `2015-06-29T20:39:09Z`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from schemas.base import OcpiModel

VOLUME_DECIMALS_MAX: Final = 12
AMOUNT_DECIMALS_MAX: Final = 4
AMOUNT_DIGITS_MAX: Final = 20
VOLUME_DIGITS_MAX: Final = 24

CISTRING_PATTERN: Final = r"^[\x20-\x7E]*$"
STRING_PATTERN: Final = r"^[^\x00-\x1F\x7F]*$"
COUNTRY_CODE_PATTERN: Final = r"^[A-Za-z]{2}$"
PARTY_ID_PATTERN: Final = r"^[A-Za-z0-9]{3}$"
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"
LANGUAGE_PATTERN: Final = r"^[A-Za-z]{2}$"
TIME_OF_DAY_PATTERN: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
DATE_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
LATITUDE_PATTERN: Final = r"^-?[0-9]{1,2}\.[0-9]{5,7}$"
LONGITUDE_PATTERN: Final = r"^-?[0-9]{1,3}\.[0-9]{5,7}$"

# The sentence `schemas.validation` shows when a value does not match one of the patterns.
PATTERN_RULES: Final[dict[str, str]] = {
    CISTRING_PATTERN: "must be printable ASCII",
    STRING_PATTERN: "must not contain control characters",
    COUNTRY_CODE_PATTERN: "must be 2 letters (ISO 3166-1 alpha-2)",
    PARTY_ID_PATTERN: "must be 3 letters or digits",
    CURRENCY_PATTERN: "must be 3 upper-case letters (ISO 4217)",
    LANGUAGE_PATTERN: "must be 2 letters (ISO 639-1)",
    TIME_OF_DAY_PATTERN: "must be a time of day HH:MM (00:00 to 23:59)",
    DATE_PATTERN: "must be a date YYYY-MM-DD",
    LATITUDE_PATTERN: "must be a latitude like 50.770774",
    LONGITUDE_PATTERN: "must be a longitude like -126.104965",
}

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$",
    re.IGNORECASE,
)


def _cistring(max_length: int) -> StringConstraints:
    return StringConstraints(max_length=max_length, pattern=CISTRING_PATTERN)


def _string(max_length: int) -> StringConstraints:
    return StringConstraints(max_length=max_length, pattern=STRING_PATTERN)


CiString2 = Annotated[str, _cistring(2)]
CiString3 = Annotated[str, _cistring(3)]
CiString4 = Annotated[str, _cistring(4)]
CiString32 = Annotated[str, _cistring(32)]
CiString36 = Annotated[str, _cistring(36)]
CiString39 = Annotated[str, _cistring(39)]
CiString48 = Annotated[str, _cistring(48)]
String2 = Annotated[str, _string(2)]
String3 = Annotated[str, _string(3)]
String4 = Annotated[str, _string(4)]
String10 = Annotated[str, _string(10)]
String16 = Annotated[str, _string(16)]
String20 = Annotated[str, _string(20)]
String36 = Annotated[str, _string(36)]
String39 = Annotated[str, _string(39)]
String45 = Annotated[str, _string(45)]
String48 = Annotated[str, _string(48)]
String64 = Annotated[str, _string(64)]
String100 = Annotated[str, _string(100)]
String255 = Annotated[str, _string(255)]
String512 = Annotated[str, _string(512)]
String5000 = Annotated[str, _string(5000)]
Url = Annotated[str, _string(255)]

CountryCode = Annotated[str, StringConstraints(pattern=COUNTRY_CODE_PATTERN)]
PartyId = Annotated[str, StringConstraints(pattern=PARTY_ID_PATTERN)]
CurrencyCode = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]
LanguageCode = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
TimeOfDay = Annotated[str, StringConstraints(pattern=TIME_OF_DAY_PATTERN)]
LocalDate = Annotated[str, StringConstraints(pattern=DATE_PATTERN)]
Latitude = Annotated[str, StringConstraints(pattern=LATITUDE_PATTERN)]
Longitude = Annotated[str, StringConstraints(pattern=LONGITUDE_PATTERN)]


def refuse_float(value: object) -> object:
    """Refuse binary floats and booleans where an exact decimal is expected."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_type", "must be a number, not a boolean")
    if isinstance(value, float):
        raise PydanticCustomError(
            "float_refused",
            "must be an exact decimal (JSON number or decimal string), not a binary float",
        )
    return value


def _to_decimal(value: object) -> Decimal:
    if type(value) is Decimal:
        return value
    refuse_float(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise PydanticCustomError(
                "decimal_parsing", "Input should be a valid decimal"
            ) from None
    raise PydanticCustomError(
        "decimal_type", "Decimal input should be an integer, string or Decimal object"
    )


def _shape_of_tuple(number: Decimal) -> tuple[int, int] | None:
    _, digit_tuple, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        return None
    if exponent < 0:
        return -exponent, max(len(digit_tuple), -exponent)
    return 0, len(digit_tuple) + exponent


def decimal_shape(number: Decimal) -> tuple[int, int] | None:
    """(decimal places, digits) as pydantic counts them for `decimal_places` and
    `max_digits`; None when not finite. Read from the plain text form where there is one
    (a fifth of `as_tuple`'s cost, and a CDR has about twenty numbers); a test holds the
    two equal."""
    text = str(number)
    if "E" in text or "N" in text or "I" in text:  # exponent form, NaN, sNaN, Infinity
        return _shape_of_tuple(number)
    whole, _, fraction = text.lstrip("-").partition(".")
    significant = len((whole + fraction).lstrip("0")) or 1
    places = len(fraction)
    return places, max(significant, places)


def _exact_decimal(places_max: int, digits_max: int, non_negative: bool = False) -> PlainValidator:
    """One Python call per number, doing what pydantic's Decimal type with `allow_inf_nan`,
    `ge`, `decimal_places` and `max_digits` would do in several (a CDR has about twenty
    numbers, so this is a fifth of its validation time), with the same error types: `float`
    refused, then finite, then places (the exponent's), then digits (at least the places),
    then >= 0."""

    def validate(value: object) -> Decimal:
        number = _to_decimal(value)
        shape = decimal_shape(number)
        if shape is None:
            raise PydanticCustomError("finite_number", "Input should be a finite number")
        places, digits = shape
        if places > places_max:
            raise PydanticCustomError(
                "decimal_max_places",
                "Decimal input should have no more than {decimal_places} decimal places",
                {"decimal_places": places_max},
            )
        if digits > digits_max:
            raise PydanticCustomError(
                "decimal_max_digits",
                "Decimal input should have no more than {max_digits} digits in total",
                {"max_digits": digits_max},
            )
        if non_negative and number < 0:
            raise PydanticCustomError(
                "greater_than_equal", "Input should be greater than or equal to {ge}", {"ge": 0}
            )
        return number

    return PlainValidator(validate)


_AMOUNT_SCHEMA = WithJsonSchema({"type": "number", "description": "decimal, at most 4 decimals"})
_VOLUME_SCHEMA = WithJsonSchema({"type": "number", "description": "decimal quantity"})
# pydantic's own JSON-mode output for a Decimal (its text), stated because behind a plain
# validator pydantic's decimal serializer warns about the string it made itself
_AS_TEXT = PlainSerializer(str, when_used="json")
Amount = Annotated[
    Decimal, _exact_decimal(AMOUNT_DECIMALS_MAX, AMOUNT_DIGITS_MAX), _AS_TEXT, _AMOUNT_SCHEMA
]
NonNegativeAmount = Annotated[
    Decimal, _exact_decimal(AMOUNT_DECIMALS_MAX, AMOUNT_DIGITS_MAX, True), _AS_TEXT, _AMOUNT_SCHEMA
]
Volume = Annotated[
    Decimal, _exact_decimal(VOLUME_DECIMALS_MAX, VOLUME_DIGITS_MAX), _AS_TEXT, _VOLUME_SCHEMA
]
NonNegativeVolume = Annotated[
    Decimal, _exact_decimal(VOLUME_DECIMALS_MAX, VOLUME_DIGITS_MAX, True), _AS_TEXT, _VOLUME_SCHEMA
]


ItemT = TypeVar("ItemT")


def _non_empty(items: tuple[ItemT, ...]) -> tuple[ItemT, ...]:
    if not items:
        raise PydanticCustomError("too_short", "must have at least one element", {"min_length": 1})
    return items


# OCPI cardinality "+". Checked after the items (not with Field(min_length=1)), so that one
# bad item is reported once, not also as "list too short".
NonEmpty = Annotated[
    tuple[ItemT, ...], AfterValidator(_non_empty), Field(json_schema_extra={"minItems": 1})
]


def _rfc3339_utc(value: object, parse: ValidatorFunctionWrapHandler) -> datetime:
    """RFC 3339 text with an offset (or an aware datetime), parsed and moved to UTC: one
    Python call around pydantic's parser instead of one before and one after it."""
    parsed: datetime | None = None
    if isinstance(value, str):
        match = _RFC3339.match(value)
        if match is None:
            raise PydanticCustomError(
                "rfc3339",
                "must be an RFC 3339 date-time with offset, e.g. 2015-06-29T20:39:09Z",
            )
        # the common form (upper-case T and Z, at most microseconds, offset minutes below
        # 60, which Python would carry into the hours) is read by the C parser; whatever it
        # refuses goes to pydantic's, for pydantic's verdict and errors
        fraction, zone = match[1], match[2]
        common = (fraction is None or len(fraction) <= 7) and value[10] == "T"
        if common and (zone == "Z" or (zone != "z" and zone[-2] < "6")):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
    elif not isinstance(value, datetime):
        raise PydanticCustomError(
            "rfc3339",
            "must be an RFC 3339 date-time with offset, e.g. 2015-06-29T20:39:09Z",
        )
    if parsed is None:
        parsed = parse(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError(
            "timezone_aware", "must have a time zone offset, e.g. 2015-06-29T20:39:09Z"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid text whose UTC time is before year 1: a
        # schema violation, not an exception that would crash the worker on every redelivery
        raise PydanticCustomError(
            "datetime_utc_range", "must lie between the years 1 and 9999 in UTC"
        ) from None


DateTime = Annotated[datetime, WrapValidator(_rfc3339_utc)]


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with `Z`, keeping sub-second digits only when there are any."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    if utc.microsecond == 0:
        timespec = "seconds"
    elif utc.microsecond % 1000 == 0:
        timespec = "milliseconds"
    else:
        timespec = "microseconds"
    return utc.isoformat(timespec=timespec)[:-6] + "Z"  # drop "+00:00"


class DisplayText(OcpiModel):
    """A text in one language, shown to drivers."""

    language: LanguageCode
    text: String512


class Price(OcpiModel):
    """A cost; `incl_vat` is absent where no VAT figure is known (e.g. OCPI 2.1.1 input)."""

    excl_vat: Amount
    incl_vat: Amount | None = None


class GeoLocation(OcpiModel):
    """WGS 84 coordinates as decimal-degree strings (OCPI keeps them as text)."""

    latitude: Latitude
    longitude: Longitude
