"""Which sessions the report lists, and when: the deadline per agreement for a COMPLETED
session without its CDR, the stale time for an unfinished one, never an INVALID one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.hub.agreement import CDR_DEADLINE_H_DEFAULT, Agreement
from schemas.hub.party import PartyRef
from schemas.ocpi.enums import SessionStatus
from settlement.sessions.missing import FindingKind, SessionState, classify

END = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _session(status: SessionStatus, end: datetime | None = END) -> SessionState:
    return SessionState(
        key="NL*TNM*SES-1",
        cpo=PartyRef.parse("NL*TNM"),
        emsp=PartyRef.parse("DE*EMP"),
        session_id="SES-1",
        status=status,
        start_date_time=END - timedelta(hours=2),
        end_date_time=end,
        last_updated=END + timedelta(minutes=5),
        updated_at=END + timedelta(minutes=6),
        kwh=Decimal("12.5"),
    )


def test_a_completed_session_is_missing_its_cdr_from_its_deadline_on() -> None:
    completed = _session(SessionStatus.COMPLETED)
    due = END + timedelta(hours=48)
    assert classify(completed, False, 48, 24, due - timedelta(seconds=1)) is None
    found = classify(completed, False, 48, 24, due, "TNM-DEFAULT v1")
    assert found is not None and found.kind is FindingKind.MISSING_CDR
    assert (found.due_at, found.agreement) == (due, "TNM-DEFAULT v1")
    json = found.json(due + timedelta(hours=3, minutes=59))
    assert (json["overdue_h"], json["due_at"], json["limit_h"]) == (
        "3.9",
        "2026-03-04T10:00:00Z",
        48,
    )


def test_without_an_end_time_the_deadline_counts_from_the_last_update() -> None:
    found = classify(
        _session(SessionStatus.COMPLETED, end=None), False, 0, 24, END + timedelta(hours=1)
    )
    assert found is not None and found.since == END + timedelta(minutes=5)


def test_a_booked_cdr_or_an_invalid_session_is_never_listed() -> None:
    late = END + timedelta(days=400)
    assert classify(_session(SessionStatus.COMPLETED), True, 48, 24, late) is None
    assert classify(_session(SessionStatus.INVALID), False, 48, 24, late) is None
    assert classify(_session(SessionStatus.ACTIVE), True, 48, 24, late) is None


@pytest.mark.parametrize(
    "status", [SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.RESERVATION]
)
def test_an_unfinished_session_without_updates_is_stale_not_missing(status: SessionStatus) -> None:
    updated = END + timedelta(minutes=6)
    assert classify(_session(status), False, 48, 24, updated + timedelta(hours=23)) is None
    found = classify(_session(status), False, 48, 24, updated + timedelta(hours=24))
    assert found is not None and found.kind is FindingKind.STALE and found.limit_h == 24


def test_an_agreement_without_a_deadline_has_the_default() -> None:
    agreement = Agreement.model_validate(
        {"agreement_id": "a", "version": 1, "cpo": {"country_code": "NL", "party_id": "TNM"},
         "currency": "EUR", "valid_from": "2026-01-01T00:00:00Z"}
    )  # fmt: skip
    assert agreement.cdr_deadline_h == CDR_DEADLINE_H_DEFAULT == 48
    with pytest.raises(ValueError, match="cdr_deadline_h"):
        Agreement.model_validate({**agreement.model_dump(), "cdr_deadline_h": -1})
