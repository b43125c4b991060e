"""A cdr.submitted record decoded at C speed, for the common valid case only.

`settlement.clearing.decode` validates with the pydantic models (the published contract).
Most records on the topic are plain valid CDRs; this module reads those with msgspec Structs
whose constraints are checked in C, then builds the very `Cdr` the pydantic models would
(as `schemas.base.trusted` does: same values, fields set and empty extras) without
validating again. It accepts only a subset of what the models accept and returns None for
everything else (unknown or extension fields, numbers with more than 4 decimals or 16 whole
digits or an exponent, numbers sent as text, times not written `YYYY-MM-DDTHH:MM:SS[.f]Z`
or with an `+HH:MM` offset, energy mixes, escapes, a schema violation of any kind), so
every refusal and its message still come from the pydantic path.
`tests/unit/clearing/test_fast_decode.py` holds the two equal on the corpus, generated and
faulty records, every field at every edge value, and hypothesis mutations.

Why each check stands where it does:

- numbers: a field typed `Any` receives a JSON integer as `int` and any other JSON number
  through `_fast_number` (the `float_hook`), which refuses more than 4 decimals, 16 whole
  digits or an exponent: such a number fits both `Amount` and `Volume`; any other JSON
  value where a number belongs (text, boolean, null, object) is refused by `_number`;
- texts: the record may hold no backslash (no escape: no control character in any text)
  and no DEL, so every `String` is printable; a CiString must also be ASCII, which holds
  for a record that is ASCII as a whole and is checked field by field otherwise
  (`_ci_texts_ascii`); msgspec's `pattern` uses `re.search`, so the patterns that remain
  are anchored with `\\Z` (a `$` would let a trailing newline through, which pydantic's
  regex refuses);
- date-times: the form `_rfc3339_utc` reads with `datetime.fromisoformat` itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, TypeVar
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType
from pydantic import BaseModel

from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import (
    CDR_ID_LENGTH_MAX,
    CHARGING_PERIODS_MAX,
    SIGNED_DIMENSIONS,
    Cdr,
    CdrDimension,
    CdrLocation,
    CdrToken,
    ChargingPeriod,
    SignedData,
    SignedValue,
)
from schemas.ocpi.enums import (
    AuthMethod,
    CdrDimensionType,
    ConnectorFormat,
    ConnectorType,
    DayOfWeek,
    PowerType,
    ReservationRestrictionType,
    TariffDimensionType,
    TariffType,
    TokenType,
)
from schemas.ocpi.tariff import PriceComponent, Tariff, TariffElement, TariffRestrictions
from schemas.ocpi.types import (
    COUNTRY_CODE_PATTERN,
    CURRENCY_PATTERN,
    DATE_PATTERN,
    LANGUAGE_PATTERN,
    LATITUDE_PATTERN,
    LONGITUDE_PATTERN,
    PARTY_ID_PATTERN,
    TIME_OF_DAY_PATTERN,
    DisplayText,
    GeoLocation,
    Price,
)

ModelT = TypeVar("ModelT", bound=BaseModel)


class Fallback(Exception):
    """The record is not in the fast path's subset: decode it with the pydantic models."""


def _anchored(pattern: str) -> str:
    assert pattern.startswith("^") and pattern.endswith("$"), pattern
    return pattern[:-1] + r"\Z"


# the form `types._rfc3339_utc` hands to `datetime.fromisoformat` (upper-case T and Z, at
# most microseconds, an offset's minutes below 60)
_TIME_TEXT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-5][0-9])\Z"
)
TimeText = Annotated[str, Meta(pattern=_TIME_TEXT)]
# whole digits of a number in the fast path: with at most 4 decimals, a number fits both
# `Amount` (4 decimals, 20 digits) and `Volume` (12 decimals, 24 digits)
WHOLE_DIGITS_MAX: Final = 16
_INT_BOUND: Final = 10**WHOLE_DIGITS_MAX


def _fast_number(text: str) -> Decimal:
    """msgspec's hook for a JSON number with a fraction or an exponent (its text): the exact
    Decimal when it has at most 4 decimals and 16 whole digits and no exponent."""
    dot = text.find(".")
    if dot < 0 or dot > WHOLE_DIGITS_MAX or len(text) - dot > 5 or "e" in text or "E" in text:
        raise Fallback
    return Decimal(text)


# texts: their length here, their characters by the checks of `decode_fast`
Ci32 = Annotated[str, Meta(max_length=32)]
Ci36 = Annotated[str, Meta(max_length=36)]
Ci39 = Annotated[str, Meta(max_length=39)]
Ci48 = Annotated[str, Meta(max_length=48)]
Text3 = Annotated[str, Meta(max_length=3)]
Text10 = Annotated[str, Meta(max_length=10)]
Text20 = Annotated[str, Meta(max_length=20)]
Text45 = Annotated[str, Meta(max_length=45)]
Text255 = Annotated[str, Meta(max_length=255)]
Text512 = Annotated[str, Meta(max_length=512)]
Text5000 = Annotated[str, Meta(max_length=5000)]
TimeOfDay = Annotated[str, Meta(pattern=_anchored(TIME_OF_DAY_PATTERN))]
LocalDate = Annotated[str, Meta(pattern=_anchored(DATE_PATTERN))]
LanguageCode = Annotated[str, Meta(pattern=_anchored(LANGUAGE_PATTERN))]
Latitude = Annotated[str, Meta(pattern=_anchored(LATITUDE_PATTERN))]
Longitude = Annotated[str, Meta(pattern=_anchored(LONGITUDE_PATTERN))]
CountryCode = Annotated[str, Meta(pattern=_anchored(COUNTRY_CODE_PATTERN))]
PartyId = Annotated[str, Meta(pattern=_anchored(PARTY_ID_PATTERN))]
CurrencyCode = Annotated[str, Meta(pattern=_anchored(CURRENCY_PATTERN))]
NonNegativeInt = Annotated[int, Meta(ge=0)]
# a number: int, or the exact Decimal `float_hook` makes; anything else is refused below
Number = Any


class _Struct(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    pass


class _Price(_Struct):
    excl_vat: Number
    incl_vat: Number | UnsetType = UNSET


class _DisplayText(_Struct):
    language: LanguageCode
    text: Text512


class _PriceComponent(_Struct):
    type: TariffDimensionType
    price: Number
    step_size: NonNegativeInt
    vat: Number | UnsetType = UNSET


class _Restrictions(_Struct):
    start_time: TimeOfDay | UnsetType | None = UNSET
    end_time: TimeOfDay | UnsetType | None = UNSET
    start_date: LocalDate | UnsetType | None = UNSET
    end_date: LocalDate | UnsetType | None = UNSET
    min_kwh: Number | UnsetType = UNSET
    max_kwh: Number | UnsetType = UNSET
    min_current: Number | UnsetType = UNSET
    max_current: Number | UnsetType = UNSET
    min_power: Number | UnsetType = UNSET
    max_power: Number | UnsetType = UNSET
    min_duration: NonNegativeInt | UnsetType | None = UNSET
    max_duration: NonNegativeInt | UnsetType | None = UNSET
    day_of_week: tuple[DayOfWeek, ...] | UnsetType = UNSET
    reservation: ReservationRestrictionType | UnsetType | None = UNSET


class _Element(_Struct):
    price_components: Annotated[tuple[_PriceComponent, ...], Meta(min_length=1)]
    restrictions: _Restrictions | UnsetType | None = UNSET


class _Tariff(_Struct):
    country_code: CountryCode
    party_id: PartyId
    id: Ci36
    currency: CurrencyCode
    elements: Annotated[tuple[_Element, ...], Meta(min_length=1)]
    last_updated: TimeText
    type: TariffType | UnsetType | None = UNSET
    tariff_alt_text: tuple[_DisplayText, ...] | UnsetType = UNSET
    tariff_alt_url: Text255 | UnsetType | None = UNSET
    min_price: _Price | UnsetType | None = UNSET
    max_price: _Price | UnsetType | None = UNSET
    start_date_time: TimeText | UnsetType | None = UNSET
    end_date_time: TimeText | UnsetType | None = UNSET


class _Dimension(_Struct):
    type: CdrDimensionType
    volume: Number


class _Period(_Struct):
    start_date_time: TimeText
    dimensions: Annotated[tuple[_Dimension, ...], Meta(min_length=1)]
    tariff_id: Ci36 | UnsetType | None = UNSET


class _Token(_Struct):
    country_code: CountryCode
    party_id: PartyId
    uid: Ci36
    type: TokenType
    contract_id: Ci36


class _Coordinates(_Struct):
    latitude: Latitude
    longitude: Longitude


class _Location(_Struct):
    id: Ci36
    address: Text45
    city: Text45
    country: Text3
    coordinates: _Coordinates
    evse_uid: Ci36
    evse_id: Ci48
    connector_id: Ci36
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType
    name: Text255 | UnsetType | None = UNSET
    postal_code: Text10 | UnsetType | None = UNSET
    state: Text20 | UnsetType | None = UNSET


class _SignedValue(_Struct):
    nature: Ci32
    plain_data: Text5000
    signed_data: Text5000


class _SignedData(_Struct):
    encoding_method: Ci36
    signed_values: Annotated[tuple[_SignedValue, ...], Meta(min_length=1)]
    encoding_method_version: int | UnsetType | None = UNSET
    public_key: Text512 | UnsetType | None = UNSET
    url: Text512 | UnsetType | None = UNSET


class _Cdr(_Struct):
    country_code: CountryCode
    party_id: PartyId
    id: Ci39
    start_date_time: TimeText
    end_date_time: TimeText
    cdr_token: _Token
    auth_method: AuthMethod
    cdr_location: msgspec.Raw  # read by `_shared_location`
    currency: CurrencyCode
    charging_periods: Annotated[
        tuple[_Period, ...], Meta(min_length=1, max_length=CHARGING_PERIODS_MAX)
    ]
    total_cost: _Price
    total_energy: Number
    total_time: Number
    last_updated: TimeText
    session_id: Ci36 | UnsetType | None = UNSET
    authorization_reference: Ci36 | UnsetType | None = UNSET
    meter_id: Text255 | UnsetType | None = UNSET
    tariffs: msgspec.Raw = msgspec.Raw()  # read by `_shared_tariffs`; empty when absent
    signed_data: _SignedData | UnsetType | None = UNSET
    total_fixed_cost: _Price | UnsetType | None = UNSET
    total_energy_cost: _Price | UnsetType | None = UNSET
    total_time_cost: _Price | UnsetType | None = UNSET
    total_parking_time: Number | UnsetType = UNSET
    total_parking_cost: _Price | UnsetType | None = UNSET
    total_reservation_cost: _Price | UnsetType | None = UNSET
    remark: Text255 | UnsetType | None = UNSET
    invoice_reference_id: Ci39 | UnsetType | None = UNSET
    credit: bool | UnsetType | None = UNSET
    credit_reference_id: Ci39 | UnsetType | None = UNSET
    home_charging_compensation: bool | UnsetType | None = UNSET


class _Submitter(_Struct):
    country_code: str
    party_id: str


class _Envelope(_Struct):
    event_id: UUID
    type: Literal["cdr.submitted"]
    occurred_at: TimeText
    submitter: _Submitter
    cdr: _Cdr
    version: Literal[1] | UnsetType = UNSET


_DECODER: Final = msgspec.json.Decoder(_Envelope, float_hook=_fast_number)
_LOCATION_DECODER: Final = msgspec.json.Decoder(_Location, float_hook=_fast_number)
_TARIFFS_DECODER: Final = msgspec.json.Decoder(tuple[_Tariff, ...], float_hook=_fast_number)


def _number(value: object) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        return value  # type: ignore[return-value]
    if kind is int and -_INT_BOUND < value < _INT_BOUND:  # type: ignore[operator]
        return Decimal(value)  # type: ignore[arg-type]
    raise Fallback  # text, boolean, null, object, array: pydantic's verdict


def _non_negative(value: object) -> Decimal:
    number = _number(value)
    if number < 0:
        raise Fallback
    return number


def _time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Fallback from None


_set: Final = object.__setattr__  # frozen models refuse their own __setattr__


def _model(cls: type[ModelT], values: dict[str, Any], fields_set: set[str]) -> ModelT:
    """`cls` from values valid by construction, as `model_validate` leaves it: every field
    in `__dict__`, the ones the document holds in the fields set, no extras (OCPI models
    allow them, so theirs is an empty dict). `schemas.base.trusted`, for OCPI models."""
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields_set)
    _set(model, "__pydantic_extra__", {})
    _set(model, "__pydantic_private__", None)
    return model


def _present(
    struct: msgspec.Struct, required: frozenset[str], optional: tuple[str, ...]
) -> set[str]:
    """The fields set: the required ones and the optional ones the document holds."""
    return {*required, *[name for name in optional if getattr(struct, name) is not UNSET]}


def _required(cls: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, field in cls.model_fields.items() if field.is_required())


def _optional(cls: type[BaseModel]) -> tuple[str, ...]:
    return tuple(name for name, field in cls.model_fields.items() if not field.is_required())


def _opt_number(value: object) -> Decimal | None:
    return None if value is UNSET or value is None else _number(value)


def _opt_non_negative(value: object) -> Decimal | None:
    return None if value is UNSET or value is None else _non_negative(value)


def _opt_time(value: str | UnsetType | None) -> datetime | None:
    return None if value is UNSET or value is None else _time(value)


_PRICE_SET: Final = frozenset({"excl_vat"})
_PRICE_FULL_SET: Final = frozenset({"excl_vat", "incl_vat"})


def _price(price: _Price) -> Price:
    incl_vat = price.incl_vat
    if incl_vat is UNSET:
        values = {"excl_vat": _number(price.excl_vat), "incl_vat": None}
        return _model(Price, values, set(_PRICE_SET))
    values = {"excl_vat": _number(price.excl_vat), "incl_vat": _opt_number(incl_vat)}
    return _model(Price, values, set(_PRICE_FULL_SET))


def _opt_price(price: _Price | UnsetType | None) -> Price | None:
    return None if price is UNSET or price is None else _price(price)


def _restrictions(item: _Restrictions) -> TariffRestrictions:
    values = {
        "start_time": None if item.start_time is UNSET else item.start_time,
        "end_time": None if item.end_time is UNSET else item.end_time,
        "start_date": None if item.start_date is UNSET else item.start_date,
        "end_date": None if item.end_date is UNSET else item.end_date,
        "min_kwh": _opt_non_negative(item.min_kwh),
        "max_kwh": _opt_non_negative(item.max_kwh),
        "min_current": _opt_non_negative(item.min_current),
        "max_current": _opt_non_negative(item.max_current),
        "min_power": _opt_non_negative(item.min_power),
        "max_power": _opt_non_negative(item.max_power),
        "min_duration": None if item.min_duration is UNSET else item.min_duration,
        "max_duration": None if item.max_duration is UNSET else item.max_duration,
        "day_of_week": () if item.day_of_week is UNSET else item.day_of_week,
        "reservation": None if item.reservation is UNSET else item.reservation,
    }
    fields_set = _present(item, frozenset(), _RESTRICTIONS_OPTIONAL)
    return _model(TariffRestrictions, values, fields_set)


_RESTRICTIONS_OPTIONAL: Final = _optional(TariffRestrictions)
_COMPONENT_SET: Final = frozenset({"type", "price", "step_size"})


def _component(item: _PriceComponent) -> PriceComponent:
    values = {
        "type": item.type,
        "price": _non_negative(item.price),
        "vat": _opt_non_negative(item.vat),
        "step_size": item.step_size,
    }
    fields_set = set(_COMPONENT_SET) if item.vat is UNSET else set(values)
    return _model(PriceComponent, values, fields_set)


def _element(item: _Element) -> TariffElement:
    restrictions = item.restrictions
    values = {
        "price_components": tuple([_component(c) for c in item.price_components]),
        "restrictions": None
        if restrictions is UNSET or restrictions is None
        else _restrictions(restrictions),
    }
    fields_set = {"price_components"} if restrictions is UNSET else set(values)
    return _model(TariffElement, values, fields_set)


_TARIFF_REQUIRED: Final = _required(Tariff)
_TARIFF_OPTIONAL: Final = tuple(name for name in _optional(Tariff) if name != "energy_mix")


def _tariff(item: _Tariff) -> Tariff:
    start, end = _opt_time(item.start_date_time), _opt_time(item.end_date_time)
    if start is not None and end is not None and end < start:
        raise Fallback
    alt_text = item.tariff_alt_text
    values = {
        "country_code": item.country_code,
        "party_id": item.party_id,
        "id": item.id,
        "currency": item.currency,
        "type": None if item.type is UNSET else item.type,
        "tariff_alt_text": ()
        if alt_text is UNSET
        else tuple(
            [
                _model(DisplayText, {"language": t.language, "text": t.text}, {"language", "text"})
                for t in alt_text
            ]
        ),
        "tariff_alt_url": None if item.tariff_alt_url is UNSET else item.tariff_alt_url,
        "min_price": _opt_price(item.min_price),
        "max_price": _opt_price(item.max_price),
        "elements": tuple([_element(element) for element in item.elements]),
        "start_date_time": start,
        "end_date_time": end,
        "energy_mix": None,
        "last_updated": _time(item.last_updated),
    }
    return _model(Tariff, values, _present(item, _TARIFF_REQUIRED, _TARIFF_OPTIONAL))


def _dimension(item: _Dimension) -> CdrDimension:
    kind, volume = item.type, _number(item.volume)
    if kind not in SIGNED_DIMENSIONS and (
        volume < 0 or (kind is CdrDimensionType.STATE_OF_CHARGE and volume > 100)
    ):
        raise Fallback
    return _model(CdrDimension, {"type": kind, "volume": volume}, {"type", "volume"})


_PERIOD_SET: Final = frozenset({"start_date_time", "dimensions"})


def _period(item: _Period) -> ChargingPeriod:
    tariff_id = item.tariff_id
    values = {
        "start_date_time": _time(item.start_date_time),
        "dimensions": tuple([_dimension(d) for d in item.dimensions]),
        "tariff_id": None if tariff_id is UNSET else tariff_id,
    }
    fields_set = set(_PERIOD_SET) if tariff_id is UNSET else set(values)
    return _model(ChargingPeriod, values, fields_set)


def _token(item: _Token) -> CdrToken:
    values = {
        "country_code": item.country_code,
        "party_id": item.party_id,
        "uid": item.uid,
        "type": item.type,
        "contract_id": item.contract_id,
    }
    return _model(CdrToken, values, set(values))


_LOCATION_REQUIRED: Final = _required(CdrLocation)
_LOCATION_OPTIONAL: Final = _optional(CdrLocation)


def _location(item: _Location) -> CdrLocation:
    coordinates = item.coordinates
    values = {
        "id": item.id,
        "name": None if item.name is UNSET else item.name,
        "address": item.address,
        "city": item.city,
        "postal_code": None if item.postal_code is UNSET else item.postal_code,
        "state": None if item.state is UNSET else item.state,
        "country": item.country,
        "coordinates": _model(
            GeoLocation,
            {"latitude": coordinates.latitude, "longitude": coordinates.longitude},
            {"latitude", "longitude"},
        ),
        "evse_uid": item.evse_uid,
        "evse_id": item.evse_id,
        "connector_id": item.connector_id,
        "connector_standard": item.connector_standard,
        "connector_format": item.connector_format,
        "connector_power_type": item.connector_power_type,
    }
    return _model(CdrLocation, values, _present(item, _LOCATION_REQUIRED, _LOCATION_OPTIONAL))


_SIGNED_REQUIRED: Final = _required(SignedData)
_SIGNED_OPTIONAL: Final = _optional(SignedData)
_SIGNED_VALUE_SET: Final = frozenset(SignedValue.model_fields)


def _signed(item: _SignedData) -> SignedData:
    values = {
        "encoding_method": item.encoding_method,
        "encoding_method_version": None
        if item.encoding_method_version is UNSET
        else item.encoding_method_version,
        "public_key": None if item.public_key is UNSET else item.public_key,
        "signed_values": tuple(
            [
                _model(
                    SignedValue,
                    {"nature": v.nature, "plain_data": v.plain_data, "signed_data": v.signed_data},
                    set(_SIGNED_VALUE_SET),
                )
                for v in item.signed_values
            ]
        ),
        "url": None if item.url is UNSET else item.url,
    }
    return _model(SignedData, values, _present(item, _SIGNED_REQUIRED, _SIGNED_OPTIONAL))


# A stream repeats a few hundred charging stations and tariffs (a CPO embeds the same
# tariff in every CDR it prices with it): each is read and built once per text and then
# shared by every CDR that holds the very same text (frozen values, so sharing is safe, and
# `identity.canonical_json` writes each shared one once).
_LOCATIONS: dict[bytes, CdrLocation] = {}
_TARIFFS: dict[bytes, tuple[Tariff, ...]] = {}
SHARED_TEXTS_MAX: Final = 4_096


def _shared_location(raw: msgspec.Raw) -> CdrLocation:
    text = bytes(raw)
    location = _LOCATIONS.get(text)
    if location is None:
        location = _location(_LOCATION_DECODER.decode(text))
        if len(_LOCATIONS) >= SHARED_TEXTS_MAX:
            _LOCATIONS.clear()
        _LOCATIONS[text] = location
    return location


def _shared_tariffs(raw: msgspec.Raw) -> tuple[Tariff, ...]:
    text = bytes(raw)
    tariffs = _TARIFFS.get(text)
    if tariffs is None:
        tariffs = tuple([_tariff(tariff) for tariff in _TARIFFS_DECODER.decode(text)])
        if len(_TARIFFS) >= SHARED_TEXTS_MAX:
            _TARIFFS.clear()
        _TARIFFS[text] = tariffs
    return tariffs


_CDR_REQUIRED: Final = _required(Cdr)
_CDR_OPTIONAL: Final = tuple(name for name in _optional(Cdr) if name != "tariffs")


def _cdr(item: _Cdr) -> Cdr:
    start, end = _time(item.start_date_time), _time(item.end_date_time)
    credit = None if item.credit is UNSET else item.credit
    credit_reference_id = None if item.credit_reference_id is UNSET else item.credit_reference_id
    if end < start or (
        credit_reference_id is None if credit is True else len(item.id) > CDR_ID_LENGTH_MAX
    ):
        raise Fallback
    signed, tariffs = item.signed_data, item.tariffs
    values = {
        "country_code": item.country_code,
        "party_id": item.party_id,
        "id": item.id,
        "start_date_time": start,
        "end_date_time": end,
        "session_id": None if item.session_id is UNSET else item.session_id,
        "cdr_token": _token(item.cdr_token),
        "auth_method": item.auth_method,
        "authorization_reference": None
        if item.authorization_reference is UNSET
        else item.authorization_reference,
        "cdr_location": _shared_location(item.cdr_location),
        "meter_id": None if item.meter_id is UNSET else item.meter_id,
        "currency": item.currency,
        "tariffs": _shared_tariffs(tariffs) if tariffs else (),
        "charging_periods": tuple([_period(period) for period in item.charging_periods]),
        "signed_data": None if signed is UNSET or signed is None else _signed(signed),
        "total_cost": _price(item.total_cost),
        "total_fixed_cost": _opt_price(item.total_fixed_cost),
        "total_energy": _number(item.total_energy),
        "total_energy_cost": _opt_price(item.total_energy_cost),
        "total_time": _non_negative(item.total_time),
        "total_time_cost": _opt_price(item.total_time_cost),
        "total_parking_time": _opt_non_negative(item.total_parking_time),
        "total_parking_cost": _opt_price(item.total_parking_cost),
        "total_reservation_cost": _opt_price(item.total_reservation_cost),
        "remark": None if item.remark is UNSET else item.remark,
        "invoice_reference_id": None
        if item.invoice_reference_id is UNSET
        else item.invoice_reference_id,
        "credit": credit,
        "credit_reference_id": credit_reference_id,
        "home_charging_compensation": None
        if item.home_charging_compensation is UNSET
        else item.home_charging_compensation,
        "last_updated": _time(item.last_updated),
    }
    fields_set = _present(item, _CDR_REQUIRED, _CDR_OPTIONAL)
    if tariffs:
        fields_set.add("tariffs")
    return _model(Cdr, values, fields_set)


def _ci_texts_ascii(cdr: Cdr) -> bool:
    """Whether every CiString of the CDR is ASCII (it is printable already: the document
    holds no escape and no DEL), for a document that is not ASCII as a whole."""
    token, location, signed = cdr.cdr_token, cdr.cdr_location, cdr.signed_data
    texts = [
        cdr.id,
        cdr.session_id or "",
        cdr.authorization_reference or "",
        cdr.invoice_reference_id or "",
        cdr.credit_reference_id or "",
        token.uid,
        token.contract_id,
        location.id,
        location.evse_uid,
        location.evse_id,
        location.connector_id,
    ]
    texts += [period.tariff_id or "" for period in cdr.charging_periods]
    texts += [tariff.id for tariff in cdr.tariffs]
    if signed is not None:
        texts.append(signed.encoding_method)
        texts += [value.nature for value in signed.signed_values]
    return "".join(texts).isascii()


def decode_fast(value: bytes) -> tuple[str, PartyRef, Cdr] | None:
    """(event id, submitter, CDR) of a cdr.submitted record in the fast path's subset, with
    exactly the values `settlement.clearing.decode` would give; None for any other record
    (which that module then decodes, accepts or refuses)."""
    if b"\\" in value or b"\x7f" in value:
        return None  # an escape or a DEL: which texts hold what is the pydantic path's job
    try:
        envelope = _DECODER.decode(value)
        _time(envelope.occurred_at)
        submitter = PartyRef.of(envelope.submitter.country_code, envelope.submitter.party_id)
        cdr = _cdr(envelope.cdr)
    except (msgspec.DecodeError, Fallback, ValueError):
        return None
    if not value.isascii() and not _ci_texts_ascii(cdr):
        return None
    if not cdr.id or (cdr.is_credit and cdr.credit_reference_id == ""):
        return None  # refused by decode's identity rule
    return str(envelope.event_id), submitter, cdr
