"""Which sessions lack their CDR: completed ones past the deadline, and ones gone stale.

OCPI sets no deadline for a CDR ("once a month … is also allowed"), so the hub takes the
roaming agreement's `cdr_deadline_h` (48 hours unless it says otherwise), counted from the
session's end. A session's CDR is there once a CDR with the same country code, party id and
`session_id` is booked (settlement.store.missing_cdrs says how the two are matched).

    COMPLETED, ended 2026-03-01T10:00Z, deadline 48 h, no CDR booked, now 2026-03-04T09:00Z
        -> MISSING_CDR, due 2026-03-03T10:00Z, 23 h overdue
    ACTIVE, last update 2026-03-02T08:00Z, stale after 24 h, now 2026-03-04T09:00Z
        -> STALE (the CPO never said it ended: not missing, but a CDR may never come)
    INVALID -> never listed ("declared invalid and will not be billed")

A session whose CDR is booked is never listed, whatever its status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from schemas.hub.party import PartyRef
from schemas.ocpi.enums import SessionStatus
from schemas.ocpi.types import format_datetime

SESSION_STALE_H_DEFAULT: Final = 24
"""An unfinished session without an update for this long is stale (ROAMCLEAR_SESSION_STALE_H)."""
SESSION_STALE_H_MAX: Final = 24 * 92
UNFINISHED: Final = frozenset(
    {SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.RESERVATION}
)


class FindingKind(StrEnum):
    MISSING_CDR = "MISSING_CDR"  # COMPLETED, no CDR booked after the agreement's deadline
    STALE = "STALE"  # PENDING, ACTIVE or RESERVATION, without an update beyond the stale time


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session's current version, as the report needs it."""

    key: str  # NL*TNM*SES-0001
    cpo: PartyRef
    emsp: PartyRef
    session_id: str
    status: SessionStatus
    start_date_time: datetime
    end_date_time: datetime | None
    last_updated: datetime  # the CPO's
    updated_at: datetime  # when the hub accepted the current version
    kwh: Decimal

    @property
    def completed_at(self) -> datetime:
        """When the session ended: its end_date_time, else its last update."""
        return self.end_date_time or self.last_updated


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    session: SessionState
    since: datetime  # the session's end (MISSING_CDR) or its last update (STALE)
    limit_h: int  # the CDR deadline or the stale time, in hours
    agreement: str | None  # the agreement whose deadline applied ("tnm-default v3")
    rejected_cdrs: tuple[str, ...] = ()  # reason codes of CDRs received for it and rejected

    @property
    def due_at(self) -> datetime:
        return self.since + timedelta(hours=self.limit_h)

    def json(self, now: datetime) -> dict[str, Any]:
        session = self.session
        overdue_s = int((now - self.due_at).total_seconds())
        return {
            "kind": self.kind.value,
            "session": session.key,
            "country_code": session.cpo.country_code,
            "party_id": session.cpo.party_id,
            "session_id": session.session_id,
            "cpo": str(session.cpo),
            "emsp": str(session.emsp),
            "status": session.status.value,
            "start_date_time": format_datetime(session.start_date_time),
            "end_date_time": None
            if session.end_date_time is None
            else format_datetime(session.end_date_time),
            "last_updated": format_datetime(session.last_updated),
            "updated_at": format_datetime(session.updated_at),
            "kwh": str(session.kwh),
            "since": format_datetime(self.since),
            "limit_h": self.limit_h,
            "due_at": format_datetime(self.due_at),
            # tenths of an hour, rounded down, in integers (no decimal context involved)
            "overdue_h": str(Decimal(overdue_s * 10 // 3600).scaleb(-1)),
            "agreement": self.agreement,
            "rejected_cdrs": list(self.rejected_cdrs),
        }


def classify(
    session: SessionState,
    cdr_booked: bool,
    deadline_h: int,
    stale_h: int,
    now: datetime,
    agreement: str | None = None,
    rejected_cdrs: tuple[str, ...] = (),
) -> Finding | None:
    """The session's finding at `now`, or None when nothing is missing (yet)."""
    assert deadline_h >= 0 and stale_h >= 0
    if cdr_booked or session.status is SessionStatus.INVALID:
        return None
    if session.status is SessionStatus.COMPLETED:
        finding = Finding(
            FindingKind.MISSING_CDR, session, session.completed_at, deadline_h, agreement,
            rejected_cdrs,
        )  # fmt: skip
    else:
        assert session.status in UNFINISHED
        finding = Finding(
            FindingKind.STALE, session, session.updated_at, stale_h, None, rejected_cdrs
        )
    return finding if now >= finding.due_at else None
