"""The CDR receiver's door (settlement.clearing.door), its envelope (pipeline.publish) and its
rate buckets (pipeline.ocpi.limits), without servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from pipeline.ocpi.limits import Rate, RateLimiter, RateLimitInvalid, parse_rates, retry_after
from pipeline.publish import received_cdr_record
from schemas.events import CdrSubmitted, new_envelope, parse_envelope
from schemas.hub.party import PartyRef
from schemas.wire import encode_json, to_ocpi_json
from settlement.clearing.door import CHARGING_PERIODS_MAX, Admitted, Refused, admit, same_content
from settlement.clearing.reasons import Reason
from tests.unit.schemas.factories import CDR, build

TNM = PartyRef.parse("NL*TNM")


def cdr(**changes: Any) -> dict[str, Any]:
    """The factory CDR with fields replaced (None: removed)."""
    data = build(CDR, **changes)
    return {name: value for name, value in data.items() if value is not None}


def _body(**changes: Any) -> bytes:
    return encode_json(cdr(**changes)).encode()


def test_a_cdr_of_the_caller_is_admitted_under_its_canonical_key() -> None:
    admitted = admit(_body(id="cdr-7"), TNM)
    assert isinstance(admitted, Admitted)
    assert str(admitted.key) == "NL*TNM*CDR-7" and admitted.cdr.id == "cdr-7"


@pytest.mark.parametrize(
    ("body", "reason", "says"),
    [
        (b'{"id": ', Reason.MALFORMED_JSON, "not JSON"),
        ('{"id": "x"}'.encode("utf-16"), Reason.MALFORMED_JSON, "not UTF-8"),
        (b"[1, 2]", Reason.SCHEMA_INVALID, "$: "),
        (_body(currency=None), Reason.SCHEMA_INVALID, "currency"),
        (_body(id=""), Reason.SCHEMA_INVALID, "id: must not be empty"),
        (_body(remark="a\u0000b"), Reason.SCHEMA_INVALID, "remark: must not contain the NUL"),
        (_body(country_code="DE", party_id="ABC"), Reason.NOT_OWNER, "belongs to DE*ABC"),
    ],
)
def test_what_the_door_refuses_and_why(body: bytes, reason: Reason, says: str) -> None:
    refused = admit(body, TNM)
    assert isinstance(refused, Refused)
    assert refused.reason is reason and says in refused.message


def test_every_violation_is_reported_with_its_path_relative_to_the_cdr() -> None:
    data = cdr()
    data["charging_periods"][0]["dimensions"][1]["volume"] = -1  # TIME: never negative
    del data["currency"]
    refused = admit(encode_json(data).encode(), TNM)
    assert isinstance(refused, Refused) and refused.key == "NL*TNM*CDR-0001"
    paths = {v.path for v in refused.violations}
    assert "currency" in paths and "charging_periods[0].dimensions[1].volume" in paths


def test_periods_beyond_the_limit_are_refused_before_the_schema() -> None:
    data = cdr()
    data["charging_periods"] = data["charging_periods"] * (CHARGING_PERIODS_MAX + 1)
    refused = admit(encode_json(data).encode(), TNM)
    assert isinstance(refused, Refused)
    (violation,) = refused.violations
    assert violation.path == "charging_periods" and violation.code == "too_long"
    data["charging_periods"] = data["charging_periods"][:CHARGING_PERIODS_MAX]
    assert isinstance(admit(encode_json(data).encode(), TNM), Admitted)


def test_same_content_ignores_formatting_but_not_a_changed_field() -> None:
    body = _body()
    reformatted = json.dumps(json.loads(body), indent=2, sort_keys=True).encode()
    assert same_content(body, reformatted)
    assert not same_content(body, _body(remark="corrected"))


def test_content_the_hash_cannot_take_is_not_the_same_content() -> None:
    """Found by tests/integration/ocpi/test_fuzz.py: a CDR re-sent with an integer beyond 64
    bits in a field OCPI leaves unbounded failed its whole ingest batch (503, body lost)."""
    body = _body(vendor_field={"big": Decimal("1E+30")})  # written 1 and 30 zeros
    assert same_content(body, body)  # the very bytes: no hash needed
    assert not same_content(_body(), body)


def test_the_received_record_is_the_publish_paths_envelope_with_the_bytes_as_sent() -> None:
    body = b"\xef\xbb\xbf" + _body(vendor_field={"x": Decimal("1.50")})
    admitted = admit(body, TNM)
    assert isinstance(admitted, Admitted)
    key, value, event_id = received_cdr_record(admitted.cdr, body, TNM)
    assert key == b"NL*TNM*CDR-0001"
    assert b'"vendor_field":{"x":1.50}' in value  # the partner's digits, not re-written
    spliced = parse_envelope(value)
    assert isinstance(spliced, CdrSubmitted) and str(spliced.event_id) == event_id
    built = new_envelope(
        CdrSubmitted,
        submitter=TNM,
        payload=admitted.cdr,
        event_id=UUID(event_id),
        occurred_at=spliced.occurred_at,
    )
    assert spliced == parse_envelope(to_ocpi_json(built))
    assert spliced.occurred_at.tzinfo is not None
    assert abs((datetime.now(UTC) - spliced.occurred_at).total_seconds()) < 60


def test_a_bucket_grants_its_burst_then_its_rate() -> None:
    limiter = RateLimiter(Rate(2, 3), {"NL*SLO": Rate(0.5, 1)})
    assert [limiter.wait_s("NL*TNM", now=0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert limiter.wait_s("NL*TNM", now=0.5) == 0.0  # one token back after 0.5 s
    assert limiter.wait_s("NL*SLO", now=0.0) == 0.0
    assert limiter.wait_s("NL*SLO", now=0.0) == pytest.approx(2.0)
    assert retry_after(0.01) == "1" and retry_after(2.0) == "2" and retry_after(2.1) == "3"


def test_rates_per_partner_parse_or_say_what_is_wrong() -> None:
    assert parse_rates("nl*tnm=20, DE*BIG=400/1000") == {
        "NL*TNM": Rate(20, 40),
        "DE*BIG": Rate(400, 1000),
    }
    assert parse_rates("") == {}
    for bad in ("NL*TNM", "NL*TNM=fast", "NL*TNM=0", "NL*TNM=5/0"):
        with pytest.raises(RateLimitInvalid, match="PARTY=per_s"):
            parse_rates(bad)
