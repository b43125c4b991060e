"""PUT and PATCH of a session as OCPI 2.2.1 mod_sessions says, every refusal with its reason
and every violation with its path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.sessions.push import (
    CHARGING_PERIODS_MAX,
    Accepted,
    Refusal,
    Refused,
    SessionRef,
    decode_body,
    locate,
    patch,
    put,
)
from tests.unit.sessions.factories import REF, TNM, period, session


def _paths(result: Accepted | Refused) -> list[str]:
    assert isinstance(result, Refused), result
    return [v.path for v in result.violations]


def test_a_put_is_the_whole_session_as_sent() -> None:
    sent = session(charging_periods=[period(0)])
    accepted = put(REF, sent)
    assert isinstance(accepted, Accepted)
    assert accepted.document == sent


def test_the_url_names_the_callers_own_sessions_case_insensitively() -> None:
    assert locate(TNM, "nl", "tnm", "SES-1") == SessionRef(TNM, "SES-1")
    refused = locate(TNM, "NL", "ABC", "SES-1")
    assert isinstance(refused, Refused) and refused.reason is Refusal.NOT_OWNER


def test_a_body_of_another_party_contradicts_its_url() -> None:
    refused = put(REF, session(party_id="ABC", country_code="DE"))
    assert isinstance(refused, Refused) and refused.reason is Refusal.INVALID_SESSION
    assert _paths(refused) == ["country_code", "party_id"]
    assert isinstance(put(REF, session(party_id="tnm")), Accepted)  # a CiString


def test_an_id_unlike_the_urls_and_every_other_violation_at_once() -> None:
    bad = session(id="SES-2", status="RESERVED", kwh=Decimal("-1"))
    del bad["currency"]
    refused = put(REF, bad)
    assert isinstance(refused, Refused) and refused.reason is Refusal.INVALID_SESSION
    assert set(_paths(refused)) == {"id", "status", "kwh", "currency"}
    assert "id: must be the session_id of the URL (SES-1)" in refused.message


def test_a_url_id_beyond_36_characters_is_a_violation() -> None:
    long_id = "S" * 37
    assert "url.session_id" in _paths(put(SessionRef(TNM, long_id), session(id=long_id)))


def test_a_put_body_must_be_an_object() -> None:
    assert _paths(put(REF, [session()])) == ["$"]


def test_a_session_beyond_the_period_limit_is_refused() -> None:
    many = session(charging_periods=[period(0)] * (CHARGING_PERIODS_MAX + 1))
    assert "charging_periods" in _paths(put(REF, many))


def test_a_patch_appends_periods_replaces_fields_and_keeps_the_rest() -> None:
    held = session(kwh=Decimal("1"), charging_periods=[period(0)])
    change = {"kwh": Decimal("2"), "charging_periods": [period(15)],
              "last_updated": "2026-03-04T10:15:00Z"}  # fmt: skip
    accepted = patch(REF, held, change)
    assert isinstance(accepted, Accepted)
    merged = accepted.document
    assert merged["charging_periods"] == [period(0), period(15)]
    assert merged["kwh"] == Decimal("2") and merged["x_vendor"] == "kept"
    assert merged["last_updated"] == "2026-03-04T10:15:00Z"
    assert held["charging_periods"] == [period(0)]  # the held session is not changed


@pytest.mark.parametrize("periods", [None, []])
def test_a_patch_without_periods_leaves_them(periods: Any) -> None:
    held = session(charging_periods=[period(0)])
    accepted = patch(
        REF, held, {"charging_periods": periods, "last_updated": "2026-03-04T11:00:00Z"}
    )
    assert isinstance(accepted, Accepted) and accepted.document["charging_periods"] == [period(0)]


def test_a_patch_without_last_updated_is_refused() -> None:
    refused = patch(REF, session(), {"status": "COMPLETED"})
    assert isinstance(refused, Refused) and refused.reason is Refusal.INVALID_SESSION
    assert _paths(refused) == ["last_updated"]


def test_null_removes_an_optional_field_and_a_required_one_is_then_missing() -> None:
    held = session(meter_id="M1", total_cost={"excl_vat": Decimal("1")})
    accepted = patch(REF, held, {"meter_id": None, "last_updated": "2026-03-04T11:00:00Z"})
    assert isinstance(accepted, Accepted) and "meter_id" not in accepted.document
    assert _paths(patch(REF, held, {"currency": None, "last_updated": "2026-03-04T11:00:00Z"})) == [
        "currency"
    ]


def test_a_patch_of_a_session_never_put_is_unknown() -> None:
    refused = patch(REF, None, {"status": "ACTIVE", "last_updated": "2026-03-04T11:00:00Z"})
    assert isinstance(refused, Refused) and refused.reason is Refusal.UNKNOWN_SESSION


def test_a_bad_appended_period_is_named_as_the_patch_sent_it() -> None:
    held = session(charging_periods=[period(0), period(5)])
    bad = period(10)
    bad["dimensions"][0]["type"] = "WATTS"
    refused = patch(REF, held, {"charging_periods": [period(9), bad],
                                "last_updated": "2026-03-04T11:00:00Z"})  # fmt: skip
    assert _paths(refused) == ["charging_periods[1].dimensions[0].type (appended)"]


def test_a_patch_cannot_move_the_session_to_another_party_or_id() -> None:
    moved = patch(REF, session(), {"party_id": "ABC", "last_updated": "2026-03-04T11:00:00Z"})
    assert isinstance(moved, Refused) and moved.reason is Refusal.INVALID_SESSION
    assert _paths(moved) == ["party_id"]
    assert _paths(
        patch(REF, session(), {"id": "SES-9", "last_updated": "2026-03-04T11:00:00Z"})
    ) == ["id"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"id": ', "not JSON"),
        ('{"id": "x"}'.encode("utf-16"), "UTF-16"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_a_body_that_is_not_json_is_malformed(body: bytes, says: str) -> None:
    refused = decode_body(body)
    assert isinstance(refused, Refused) and refused.reason is Refusal.MALFORMED_JSON
    assert says in refused.message


def test_numbers_are_read_exactly() -> None:
    assert decode_body(b'{"kwh": 0.10000000000000000001}') == {
        "kwh": Decimal("0.10000000000000000001")
    }


@given(st.lists(st.lists(st.integers(0, 59), max_size=4), min_size=1, max_size=6))
def test_put_then_patches_hold_every_period_in_the_order_sent(batches: list[list[int]]) -> None:
    """Whatever the split into a PUT and PATCHes, the session ends with all their periods,
    in order, and a PUT after all of them keeps only its own."""
    first, *rest = batches
    held = put(REF, session(charging_periods=[period(m) for m in first]))
    assert isinstance(held, Accepted)
    for minutes in rest:
        change = {"charging_periods": [period(m) for m in minutes],
                  "last_updated": "2026-03-04T11:00:00Z"}  # fmt: skip
        held = patch(REF, held.document, change)
        assert isinstance(held, Accepted)
    every = [m for minutes in batches for m in minutes]
    assert held.document.get("charging_periods", []) == [period(m) for m in every]
    replaced = put(REF, session())
    assert isinstance(replaced, Accepted) and "charging_periods" not in replaced.document
