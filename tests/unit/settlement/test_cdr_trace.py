"""The trace value (settlement.cdr_trace) and the re-rating behind its per-period breakdown
(settlement.rerating), without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from schemas.base import loads_exact
from schemas.wire import encode_json
from settlement.cdr_trace import ArchivedRecord, BreakdownSource, CdrTrace, RecordOutcome
from settlement.rerating import rerate_as_booked

AT = datetime(2026, 3, 4, tzinfo=UTC)


def _sample(name: str) -> Any:
    return loads_exact(resources.files("pipeline.samples").joinpath(name).read_bytes())


def _record(archive_id: int, submitter: str | None, outcome: str = "REJECTED") -> ArchivedRecord:
    return ArchivedRecord(
        archive_id, "roamclear.cdr.submitted", 0, archive_id, AT, AT, "NL*TNM*CDR-1",
        "NL*TNM*CDR-1", None, submitter, "hub-000000000000", submitter, None,
        RecordOutcome(outcome, AT, None, archive_id, "cdr_id_conflict", "dedupe", "differs"),
    )  # fmt: skip


def _trace(*records: ArchivedRecord) -> CdrTrace:
    return CdrTrace("NL*TNM*CDR-1", "NL*TNM", "DE*EMP", records, (), None, (), ())


def test_a_party_does_not_see_what_a_third_partner_submitted_under_the_key() -> None:
    trace = _trace(_record(1, "NL*TNM", "LEDGERED"), _record(2, "NL*ABC"), _record(3, None))
    assert trace.parties() == {"NL*TNM", "DE*EMP"}
    seen = trace.seen_by("DE*EMP")
    assert [r.archive_id for r in seen.records] == [1, 3]  # 3: unreadable, no submitter
    assert seen.hidden_records == 1 and trace.hidden_records == 0


def test_the_json_is_plain_data_with_exact_decimal_strings() -> None:
    body = _trace(_record(1, "NL*TNM")).as_json()
    assert body["trace_version"] == 1 and body["cdr_key"] == "NL*TNM*CDR-1"
    record = body["records"][0]
    assert record["broker_time"] == "2026-03-04T00:00:00+00:00"
    assert record["outcome"]["reason_code"] == "cdr_id_conflict"
    assert encode_json(body)  # nothing left that JSON cannot hold


def _envelope(cdr: dict[str, Any]) -> bytes:
    return encode_json(
        {
            "event_id": str(uuid.uuid4()),
            "type": "cdr.submitted",
            "version": 1,
            "occurred_at": "2026-03-04T00:00:00Z",
            "submitter": {"country_code": "NL", "party_id": "TNM"},
            "cdr": cdr,
        }
    ).encode()


def test_re_rating_as_booked_gives_the_periods_and_says_whether_the_total_matches() -> None:
    value = _envelope(_sample("cdrs_nl_tnm.json")[0])
    tariff = _sample("tariff_nl_tnm_ac.json")
    zone, tolerance = "Europe/Amsterdam", Decimal("0.01")
    same = rerate_as_booked(value, tariff, zone, tolerance, Decimal("7.2500"), Decimal("8.7725"))
    assert same.source is BreakdownSource.RE_RATED and same.matches_booking is True
    assert same.rated is not None and len(same.rated.periods) == 2
    assert same.as_json()["rating"]["total_cost"] == {"excl_vat": "7.2500", "incl_vat": "8.7725"}
    other = rerate_as_booked(value, tariff, zone, tolerance, Decimal("7.2600"), Decimal("8.7846"))
    assert other.matches_booking is False and "7.2600" in (other.note or "")


def test_a_breakdown_that_cannot_be_re_derived_says_why() -> None:
    value = _envelope(_sample("cdrs_nl_tnm.json")[0])
    tariff = _sample("tariff_nl_tnm_ac.json")
    cases = {
        "no value": rerate_as_booked(None, tariff, None, Decimal(0), None, None),
        "no longer decodes": rerate_as_booked(b"{", tariff, None, Decimal(0), None, None),
        "agreement version": rerate_as_booked(value, tariff, None, None, None, None),
        "tariff version no longer parses": rerate_as_booked(
            value, {"id": 1}, None, Decimal(0), None, None
        ),
    }
    for why, breakdown in cases.items():
        assert breakdown.source is BreakdownSource.UNAVAILABLE and breakdown.rated is None
        assert why in (breakdown.note or ""), breakdown.note
