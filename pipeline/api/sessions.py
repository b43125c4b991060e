"""The missing-CDR report for finance: the same list as `roamclear sessions missing-cdrs`.

    GET /finance/v1/sessions/missing-cdrs?partner=NL*TNM&stale_h=24&as_of=…&limit=100&offset=0

A finance token sees every session; a partner token the sessions it is the CPO or the eMSP
of (asking for another partner's is 403, as for statements). Findings come oldest due first,
a page at a time, with `X-Total-Count`, `X-Limit` and `Link: <…>; rel="next"` while more
follow. `as_of` evaluates the deadlines at another moment than now (UTC unless it carries
an offset); `stale_h` defaults to ROAMCLEAR_SESSION_STALE_H.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request, Response

from pipeline.api.db import Conn
from pipeline.api.errors import invalid
from pipeline.api.finance import Who
from schemas.hub.party import PartyRef
from settlement.sessions.missing import SESSION_STALE_H_MAX
from settlement.store.missing_cdrs import missing_cdrs

PAGE_DEFAULT: Final = 100
PAGE_MAX: Final = 1000
OFFSET_MAX: Final = 10_000_000

router = APIRouter(prefix="/finance/v1", tags=["finance"])


@router.get(
    "/sessions/missing-cdrs",
    summary="Completed sessions whose CDR is overdue, and stale unfinished ones",
    description="MISSING_CDR: COMPLETED, no CDR booked after the agreement's cdr_deadline_h "
    "(48 h by default) from the session's end; STALE: PENDING, ACTIVE or RESERVATION without "
    "an update for stale_h hours. INVALID sessions never appear. `rejected_cdrs` lists the "
    "reasons of CDRs that came for the session and were rejected.",
)
def missing(
    conn: Conn,
    who: Who,
    request: Request,
    response: Response,
    partner: Annotated[str | None, Query(description="CC*PID: its sessions as CPO or eMSP")] = None,
    stale_h: Annotated[int | None, Query(ge=0, le=SESSION_STALE_H_MAX)] = None,
    as_of: Annotated[datetime | None, Query(description="default: now")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX)] = 0,
) -> list[dict[str, Any]]:
    if partner is not None:
        try:
            partner = str(PartyRef.parse(partner))
        except ValueError as exc:
            raise invalid("query.partner", "not a party reference CC*PID", partner) from exc
    if who.scope == "PARTNER":
        if partner is not None and partner != who.partner:
            raise HTTPException(403, "this token may read only its own partner's sessions")
        partner = who.partner
    now = datetime.now(UTC) if as_of is None else as_of
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    hours: int = request.app.state.session_stale_h if stale_h is None else stale_h
    findings = missing_cdrs(conn, now, hours, partner)
    page = findings[offset : offset + limit]
    response.headers["X-Total-Count"] = str(len(findings))
    response.headers["X-Limit"] = str(limit)
    if offset + limit < len(findings):
        following = request.url.include_query_params(offset=offset + limit, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return [finding.json(now) for finding in page]
