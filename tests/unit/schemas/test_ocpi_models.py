"""OCPI 2.2.1 models: round trips, exact decimals, datetimes, extension fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from schemas.ocpi import Cdr, Location, Session, Tariff, Token
from schemas.ocpi.enums import CdrDimensionType, TariffDimensionType
from schemas.ocpi.types import (
    _RFC3339,
    DateTime,
    Price,
    _shape_of_tuple,
    decimal_shape,
    format_datetime,
)
from schemas.wire import to_ocpi_json
from tests.unit.schemas.factories import CDR, LOCATION, SESSION, TARIFF, TOKEN, build


@pytest.mark.parametrize(
    ("model", "data"),
    [(Cdr, CDR), (Tariff, TARIFF), (Session, SESSION), (Location, LOCATION), (Token, TOKEN)],
    ids=["cdr", "tariff", "session", "location", "token"],
)
def test_round_trip_through_ocpi_json(model: type[BaseModel], data: dict[str, Any]) -> None:
    parsed = model.model_validate(data)
    written = to_ocpi_json(parsed)
    again = model.model_validate_json(written)
    assert again == parsed
    assert to_ocpi_json(again) == written


def test_cdr_with_embedded_tariff_round_trips() -> None:
    cdr = Cdr.model_validate(build(CDR, tariffs=[TARIFF], credit=False))
    assert Cdr.model_validate_json(to_ocpi_json(cdr)) == cdr
    assert cdr.tariffs[0].elements[0].price_components[0].type is TariffDimensionType.ENERGY


def test_json_numbers_become_exact_decimals() -> None:
    text = to_ocpi_json(Cdr.model_validate(CDR)).decode()
    text = text.replace('"volume":0.183333', '"volume":1.183333')
    cdr = Cdr.model_validate_json(text.replace('"volume":5.5', '"volume":0.1'))
    volumes = [d.volume for p in cdr.charging_periods for d in p.dimensions]
    assert volumes[0] == Decimal("0.1")
    assert str(volumes[0]) == "0.1"
    assert volumes[-1] == Decimal("1.183333")
    assert str(volumes[-1]) == "1.183333"


def test_more_digits_than_a_float_holds_survive() -> None:
    dimension = '{"type": "ENERGY", "volume": 0.100000000001}'
    data = json.loads(to_ocpi_json(Cdr.model_validate(CDR)))
    raw = json.dumps(data).replace('{"type": "TIME", "volume": 0.5}', dimension, 1)
    cdr = Cdr.model_validate_json(raw)
    assert cdr.charging_periods[0].dimensions[1].volume == Decimal("0.100000000001")


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.from_regex(r"\A-?[0-9]{1,30}(\.[0-9]{0,30})?([eE][-+]?[0-9]{1,3})?\Z").map(Decimal)
)
def test_decimal_shape_from_text_equals_the_tuple_definition(number: Decimal) -> None:
    assert decimal_shape(number) == _shape_of_tuple(number)


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("0.3900", (4, 4)),
        ("0.0039", (4, 4)),
        ("12.345", (3, 5)),
        ("-0.00", (2, 2)),
        ("120", (0, 3)),
        ("1E+2", (0, 3)),
        ("1E-7", (7, 7)),
        ("NaN", None),
        ("-Infinity", None),
    ],
)
def test_decimal_shape_counts_places_and_digits_as_pydantic(
    text: str, shape: tuple[int, int] | None
) -> None:
    assert decimal_shape(Decimal(text)) == shape


def _parsed_by_pydantic(value: object, parse: ValidatorFunctionWrapHandler) -> datetime:
    """The DateTime validator as it was before the C-parser fast path: the reference."""
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("rfc3339")
    parsed: datetime = parse(value)
    if parsed.utcoffset() is None:
        raise ValueError("timezone_aware")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # the reference with the range fix, which both paths share
        raise ValueError("datetime_utc_range") from None


_REFERENCE = TypeAdapter(Annotated[datetime, WrapValidator(_parsed_by_pydantic)])
_FAST = TypeAdapter(DateTime)


def _outcome(adapter: TypeAdapter[datetime], text: str) -> datetime | str:
    try:
        return adapter.validate_python(text)
    except ValidationError:
        return "refused"


@settings(max_examples=1_000)
@given(
    st.tuples(
        st.integers(0, 2100),
        st.integers(0, 14),
        st.integers(0, 32),
        st.sampled_from("Tt"),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
        st.text("0123456789", max_size=9),
        st.sampled_from(["Z", "z", "+", "-"]),
        st.integers(0, 25),
        st.integers(0, 61),
    )
)
def test_datetime_fast_path_agrees_with_pydantic_on_every_rfc3339_text(parts: tuple) -> None:  # type: ignore[type-arg]
    year, month, day, t, hour, minute, second, fraction, zone, off_h, off_m = parts
    text = f"{year:04d}-{month:02d}-{day:02d}{t}{hour:02d}:{minute:02d}:{second:02d}"
    text += f".{fraction}" if fraction else ""
    text += zone if zone in "Zz" else f"{zone}{off_h:02d}:{off_m:02d}"
    assert _outcome(_FAST, text) == _outcome(_REFERENCE, text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_outside_the_utc_calendar_is_a_violation_not_a_crash(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Cdr.model_validate(build(CDR, last_updated=text))
    assert [e["type"] for e in caught.value.errors()] == ["datetime_utc_range"]


def test_python_float_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Price.model_validate({"excl_vat": 0.1})
    assert caught.value.errors()[0]["type"] == "float_refused"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (True, "decimal_type"),
        ([1], "decimal_type"),
        ("abc", "decimal_parsing"),
        (Decimal("NaN"), "finite_number"),
        ("Infinity", "finite_number"),
        (Decimal("-0.01"), "greater_than_equal"),
        (Decimal("0.00001"), "decimal_max_places"),
        (Decimal("1E+20"), "decimal_max_digits"),
        (Decimal("-1.00001"), "decimal_max_places"),  # the places are reported before the sign
    ],
)
def test_amount_errors_name_the_rule(value: object, error: str) -> None:
    component = {"type": "ENERGY", "step_size": 1, "price": value}
    with pytest.raises(ValidationError) as caught:
        Tariff.model_validate(build(TARIFF, elements=[{"price_components": [component]}]))
    assert [e["type"] for e in caught.value.errors()] == [error]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, Decimal(3)), (" 0.50 ", Decimal("0.50")), (Decimal("-0"), Decimal("-0"))],
)
def test_amounts_accept_integers_decimal_strings_and_negative_zero(
    value: object, expected: Decimal
) -> None:
    component = {"type": "ENERGY", "step_size": 1, "price": value}
    tariff = Tariff.model_validate(build(TARIFF, elements=[{"price_components": [component]}]))
    price = tariff.elements[0].price_components[0].price
    assert price == expected and str(price) == str(expected)


def test_decimal_amounts_are_written_as_exact_json_numbers() -> None:
    price = Price(excl_vat=Decimal("4.00"), incl_vat=Decimal("4.4000"))
    assert to_ocpi_json(price) == b'{"excl_vat":4.00,"incl_vat":4.4000}'
    assert to_ocpi_json(Price(excl_vat=Decimal("1E-4"))) == b'{"excl_vat":0.0001}'


def test_money_has_at_most_four_decimals_but_volumes_more() -> None:
    with pytest.raises(ValidationError):
        Price.model_validate({"excl_vat": Decimal("0.12345")})
    cdr = Cdr.model_validate(build(CDR, total_time=Decimal("1.183333")))
    assert cdr.total_time == Decimal("1.183333")


def test_datetimes_are_normalised_to_utc_and_written_with_z() -> None:
    cdr = Cdr.model_validate(build(CDR, start_date_time="2025-03-01T11:00:00+01:00"))
    assert cdr.start_date_time == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert cdr.start_date_time.utcoffset() is not None
    assert b'"start_date_time":"2025-03-01T10:00:00Z"' in to_ocpi_json(cdr)


def test_fractional_seconds_are_kept() -> None:
    cdr = Cdr.model_validate(build(CDR, last_updated="2025-03-01T11:12:00.123Z"))
    assert b'"last_updated":"2025-03-01T11:12:00.123Z"' in to_ocpi_json(cdr)


def test_unknown_fields_of_partners_are_kept() -> None:
    cdr = Cdr.model_validate(build(CDR, x_vendor={"price_round": "UP", "n": Decimal("1.5")}))
    assert cdr.model_extra == {"x_vendor": {"price_round": "UP", "n": Decimal("1.5")}}
    assert b'"x_vendor":{"price_round":"UP","n":1.5}' in to_ocpi_json(cdr)


def test_models_are_frozen() -> None:
    cdr = Cdr.model_validate(CDR)
    with pytest.raises(ValidationError):
        cdr.id = "other"  # type: ignore[misc]


def test_every_cdr_dimension_type_is_known() -> None:
    assert {member.value for member in CdrDimensionType} == {
        "CURRENT",
        "ENERGY",
        "ENERGY_EXPORT",
        "ENERGY_IMPORT",
        "MAX_CURRENT",
        "MIN_CURRENT",
        "MAX_POWER",
        "MIN_POWER",
        "PARKING_TIME",
        "POWER",
        "RESERVATION_TIME",
        "STATE_OF_CHARGE",
        "TIME",
    }


def test_credit_cdr_may_have_negative_totals_and_a_longer_id() -> None:
    cdr = Cdr.model_validate(
        build(
            CDR,
            id="CDR-0001-with-a-long-suffix-here-C-XY",
            credit=True,
            credit_reference_id="CDR-0001",
            total_cost={"excl_vat": Decimal("-3.2750"), "incl_vat": Decimal("-3.9628")},
        )
    )
    assert cdr.is_credit
    assert cdr.total_cost.excl_vat == Decimal("-3.2750")


def test_session_allows_negative_power() -> None:
    session = Session.model_validate(SESSION)
    assert session.charging_periods[0].dimensions[0].volume == Decimal("-3.2")


class _Stamped(BaseModel):
    at: DateTime


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2015-06-29T20:39:09Z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29t20:39:09z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T22:39:09+02:00", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09.5-01:30", datetime(2015, 6, 29, 22, 9, 9, 500_000, tzinfo=UTC)),
        ("2015-06-29T20:39:09.123456789Z", datetime(2015, 6, 29, 20, 39, 9, 123456, tzinfo=UTC)),
    ],
)
def test_datetimes_with_an_offset_are_read_as_utc(text: str, utc: datetime) -> None:
    stamped = _Stamped.model_validate({"at": text})
    assert stamped.at == utc and stamped.at.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2015-06-29T20:39:09", "rfc3339"),  # no offset
        ("2015-06-29 20:39:09Z", "rfc3339"),
        ("yesterday", "rfc3339"),
        (1435610349, "rfc3339"),
        ("2015-02-30T20:39:09Z", "datetime_from_date_parsing"),
        ("2015-06-29T24:00:00Z", "datetime_from_date_parsing"),
        (datetime(2015, 6, 29, 20, 39, 9), "timezone_aware"),  # noqa: DTZ001 - naive on purpose
    ],
)
def test_datetime_errors_name_the_rule(value: object, error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _Stamped.model_validate({"at": value})
    assert [e["type"] for e in caught.value.errors()] == [error]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC), "2015-06-29T20:39:09Z"),
        (datetime(2015, 6, 29, 20, 39, 9, 120_000, tzinfo=UTC), "2015-06-29T20:39:09.120Z"),
        (datetime(2015, 6, 29, 20, 39, 9, 5, tzinfo=UTC), "2015-06-29T20:39:09.000005Z"),
        (datetime.fromisoformat("2015-06-29T22:39:09+02:00"), "2015-06-29T20:39:09Z"),
    ],
)
def test_format_datetime_writes_utc_with_z(moment: datetime, text: str) -> None:
    assert format_datetime(moment) == text
