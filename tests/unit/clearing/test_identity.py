"""The content hash is part of the books (it decides exact duplicate versus conflict for a
CDR booked months ago), so its bytes are pinned, and the fast path that lets orjson write
times is held equal to the definition for any time a CDR can carry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.types import format_datetime
from settlement.clearing.identity import (
    TRANSACTION_NAMESPACE,
    canonical_json,
    content_hash,
    transaction_id,
    transaction_id_text,
)
from tests.unit.clearing.factories import cdr, cdr_data


def _definition(value: Cdr) -> bytes:
    """The canonical form as first defined: every Decimal normalised, every time through
    `format_datetime`, keys sorted, nulls left out."""

    def default(item: object) -> object:
        if isinstance(item, Decimal):
            normal = item.normalize()
            return "0" if normal.is_zero() else format(normal, "f")
        if isinstance(item, datetime):
            return format_datetime(item)
        raise TypeError(type(item).__name__)

    options = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(
        value.model_dump(mode="python", exclude_none=True), default=default, option=options
    )


def test_the_hash_of_a_sample_cdr_never_changes() -> None:
    assert content_hash(cdr()) == (
        "adffb8faddf94100e0750ccb198e4df02cfef2117762bfdde05d6c2b16af2233"
    )


def test_the_hash_of_a_cdr_with_sub_second_times_and_offsets_never_changes() -> None:
    data = cdr_data()
    data["start_date_time"] = "2026-03-01T10:00:00.250+01:00"
    data["last_updated"] = "2026-03-01T12:00:00.123456Z"
    assert content_hash(Cdr.model_validate(data)) == (
        "5f097771cb4a5e6e297265bc5b5fb917720b65cc12d51032a28a61d21f547047"
    )


# hypothesis takes naive bounds and attaches the zones itself
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2030, 1, 1)  # noqa: DTZ001
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(0)), timezone(timedelta(hours=1)), timezone(-timedelta(hours=5))]
)


@given(
    st.datetimes(EARLIEST, LATEST, timezones=ZONES),
    st.sampled_from([0, 0, 250_000, 1_000, 123_456, 999_999]),
)
def test_canonical_json_equals_the_definition_for_any_time(moment: datetime, micros: int) -> None:
    data = cdr_data()
    data["last_updated"] = moment.replace(microsecond=micros).isoformat()
    value = Cdr.model_validate(data)
    assert canonical_json(value) == _definition(value)


@pytest.mark.parametrize(
    "start",
    [
        "2026-03-01T09:00:00Z",
        "2026-03-01T10:00:00+01:00",
        "2026-03-01T09:00:00.500Z",
        "2026-03-01T08:59:59.999999Z",
    ],
)
def test_canonical_json_equals_the_definition_for_session_times(start: str) -> None:
    value = cdr(start_date_time=start)
    assert canonical_json(value) == _definition(value)


def test_a_text_that_looks_like_a_time_only_takes_the_slower_path() -> None:
    value = cdr(cdr_location={**cdr_data()["cdr_location"], "name": "hall T10:00:00 east"})
    assert canonical_json(value) == _definition(value)


def test_shared_locations_and_tariffs_hash_as_the_definition() -> None:
    """The fast decoder hands CDRs holding the same location (tariff) text one object, and
    the canonical JSON writes it once: each CDR still hashes as its definition, the second
    and later times too, with extension fields and sub-second times inside the shared parts."""
    data = cdr_data()
    tariff = {
        "country_code": data["country_code"],
        "party_id": data["party_id"],
        "id": "T1",
        "currency": data["currency"],
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": Decimal("0.250"), "step_size": 1}]}
        ],
        "last_updated": "2026-01-01T00:00:00.500Z",
    }
    variants = [
        {},
        {"tariffs": [tariff]},
        {
            "tariffs": [
                tariff,
                {**tariff, "id": "T2", "x_extension": {"a": None, "b": [Decimal("1.50")]}},
            ]
        },
        {"cdr_location": {**data["cdr_location"], "x_note": "T10:00:00 hall"}},
    ]
    for variant in variants * 2:
        value = Cdr.model_validate({**data, **variant})
        assert canonical_json(value) == _definition(value)
        twin = Cdr.model_validate({**data, **variant})
        shared = twin.model_copy(
            update={"cdr_location": value.cdr_location, "tariffs": value.tariffs}
        )
        assert canonical_json(shared) == _definition(shared) == canonical_json(value)


@given(st.text(min_size=1, max_size=80), st.from_regex(r"\A[0-9a-f]{64}\Z"))
def test_transaction_ids_are_the_uuid5_of_key_and_hash(cdr_key: str, cdr_hash: str) -> None:
    expected = uuid.uuid5(TRANSACTION_NAMESPACE, f"{cdr_key}|{cdr_hash}")
    assert transaction_id(cdr_key, cdr_hash) == expected
    assert transaction_id_text(cdr_key, cdr_hash) == str(expected)
