"""Disputes over the finance API (docs/disputes.md): a partner opens, reads and withdraws
its own; finance reads all and decides (accept, decline, write off).

    POST /finance/v1/disputes                  {"cdr_key", "reason", "claimed_amount", "note"}
    GET  /finance/v1/disputes?state=open&partner=DE*EMP&limit=100&offset=0
    GET  /finance/v1/disputes/{id}             with its history
    POST /finance/v1/disputes/{id}/withdraw    {"note"}              the opener's token
    POST /finance/v1/disputes/{id}/accept      {"note", "credit_cdr_key"}   finance
                                               or {"note", "adjustment_amount"}
    POST /finance/v1/disputes/{id}/decline     {"note"}              finance
    POST /finance/v1/disputes/{id}/write-off   {"note"}              finance

A partner's own disputes are the ones it opened: another's is 404, the same answer as one
that does not exist. A refused opening or decision is 422 with every problem. Money is a
decimal string both ways (a JSON number is refused: it may already have been rounded).
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from pipeline.api.db import Conn
from pipeline.api.errors import invalid, problem, unprocessable
from pipeline.api.finance import Who, listing_partner
from pipeline.api.tokens import Principal
from settlement.disputes import (
    HUB,
    NOTE_CHARS_MAX,
    Action,
    Dispute,
    DisputeNotFound,
    DisputeRefused,
    DisputeState,
)
from settlement.store import disputes as store
from settlement.store.db import Row

router = APIRouter(prefix="/finance/v1", tags=["disputes"])
_KEY_CHARS_MAX = 48  # CC*PID* and a 36-character OCPI CDR id


class Opening(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cdr_key: str = Field(max_length=_KEY_CHARS_MAX, description="the booked CDR, CC*PID*ID")
    reason: str = Field(max_length=40, description="AMOUNT_INCORRECT, TARIFF_INCORRECT, …")
    claimed_amount: str = Field(max_length=40, description='a decimal string, e.g. "4.50"')
    note: str = Field("", max_length=NOTE_CHARS_MAX)
    opened_by: str | None = Field(
        None, max_length=6, description="finance tokens only: the party it opens it for"
    )


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str = Field(max_length=NOTE_CHARS_MAX, description="why")
    credit_cdr_key: str | None = Field(
        None, max_length=_KEY_CHARS_MAX, description="accept: the credit CDR reversing it"
    )
    adjustment_amount: str | None = Field(
        None, max_length=40, description="accept: or a hub adjustment of this amount"
    )


def _refused(exc: DisputeRefused) -> HTTPException:
    return HTTPException(422, unprocessable([problem("body", p) for p in exc.problems])["detail"])


def _visible(conn: psycopg.Connection[Row], who: Principal, dispute_id: int) -> Dispute:
    """404 for a dispute that does not exist or another partner opened: one answer for both."""
    try:
        dispute = store.show(conn, dispute_id)
    except DisputeNotFound:
        dispute = None
    if dispute is None or not who.may_read(dispute.opened_by):
        raise HTTPException(404, f"no dispute {dispute_id}")
    return dispute


def _recorded_by(who: Principal) -> str:
    return "api:finance" if who.scope == "FINANCE" else f"api:{who.partner}"


@router.post("/disputes", status_code=201, summary="Open a dispute of a booked CDR")
def open_dispute(body: Opening, conn: Conn, who: Who) -> dict[str, Any]:
    if who.scope == "PARTNER":
        if body.opened_by is not None and body.opened_by.upper() != who.partner:
            raise HTTPException(403, "a partner token opens disputes for its own partner only")
        party = who.partner
    elif body.opened_by is None:
        raise invalid("body.opened_by", "a finance token names the party it opens it for")
    else:
        party = body.opened_by
    assert party is not None
    try:
        dispute = store.open_dispute(
            conn, body.cdr_key.upper(), party, body.reason.upper(), body.claimed_amount,
            body.note, _recorded_by(who),
        )  # fmt: skip
    except DisputeRefused as exc:
        raise _refused(exc) from None
    return dispute.json()


@router.get("/disputes", summary="Disputes, newest first (a partner token sees its own)")
def disputes(
    conn: Conn,
    who: Who,
    state: Annotated[str | None, Query(description="open, accepted, declined, …")] = None,
    partner: Annotated[str | None, Query(description="opened by CC*PID")] = None,
    limit: Annotated[int, Query(ge=1, le=store.LIST_LIMIT_MAX)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    opened_by = listing_partner(who, partner, "disputes")
    try:
        wanted = None if state is None else DisputeState(state.lower())
    except ValueError as exc:
        raise invalid("query.state", "not a dispute state", state) from exc
    return [d.json() for d in store.list_disputes(conn, wanted, opened_by, limit, offset)]


@router.get("/disputes/{dispute_id}", summary="One dispute with its history")
def dispute(dispute_id: int, conn: Conn, who: Who) -> dict[str, Any]:
    return _visible(conn, who, dispute_id).json()


def _decide(
    conn: psycopg.Connection[Row], who: Principal, dispute_id: int, action: Action, body: Decision
) -> dict[str, Any]:
    found = _visible(conn, who, dispute_id)
    if action is Action.WITHDRAW:
        if who.scope != "PARTNER":
            raise HTTPException(403, "a dispute is withdrawn by the party that opened it")
        actor = found.opened_by
    elif who.scope != "FINANCE":
        raise HTTPException(403, f"only finance may {action.value} a dispute")
    else:
        actor = HUB
    try:
        moved = store.move(
            conn, dispute_id, action, actor, body.note, _recorded_by(who),
            None if body.credit_cdr_key is None else body.credit_cdr_key.upper(),
            body.adjustment_amount,
        )  # fmt: skip
    except DisputeRefused as exc:
        raise _refused(exc) from None
    return moved.json()


@router.post("/disputes/{dispute_id}/withdraw", summary="Withdraw (the opener's token)")
def withdraw(dispute_id: int, body: Decision, conn: Conn, who: Who) -> dict[str, Any]:
    return _decide(conn, who, dispute_id, Action.WITHDRAW, body)


@router.post(
    "/disputes/{dispute_id}/accept",
    summary="Accept by the CPO's credit or a hub adjustment (finance)",
)
def accept(dispute_id: int, body: Decision, conn: Conn, who: Who) -> dict[str, Any]:
    return _decide(conn, who, dispute_id, Action.ACCEPT, body)


@router.post("/disputes/{dispute_id}/decline", summary="Decline with reasoning (finance)")
def decline(dispute_id: int, body: Decision, conn: Conn, who: Who) -> dict[str, Any]:
    return _decide(conn, who, dispute_id, Action.DECLINE, body)


@router.post("/disputes/{dispute_id}/write-off", summary="Write off (finance)")
def write_off(dispute_id: int, body: Decision, conn: Conn, who: Who) -> dict[str, Any]:
    return _decide(conn, who, dispute_id, Action.WRITE_OFF, body)
