"""The finance API: statements of closed settlement batches, for finance and for partners.

    GET /finance/v1/statements?partner=NL*TNM&from=2025-05-01&to=2025-06-01&limit=100
    GET /finance/v1/statements/{id}          JSON (header, totals, VAT, lines)
    GET /finance/v1/statements/{id}.csv      CSV (settlement.statements.csv_export)
    GET /finance/v1/statements/{id}.pdf      PDF

Bearer tokens (``roamclear statements token create``): a finance token reads every
statement, a partner token only its own partner's: another partner's statement is 404, the
same answer as a statement that does not exist, so a partner cannot count the hub's
statements by probing ids. No or an unknown token is 401. Money is always a decimal string.

The list answers a page at a time (``limit``, at most ``LIST_PAGE_MAX``; ``offset``), in
the order statements closed, with ``X-Total-Count``, ``X-Limit`` and ``Link: <…>;
rel="next"`` while more follow (OCPI's pagination headers): nothing stops silently.

Figures are the stored ones, as closed and sealed. The list checks each row's seal against
the stored row (``seal_status``; no ledger scan) and counts the page's failures in
``X-Statements-Unverified``. One statement is verified against the ledger as well: its JSON
carries a ``verification`` object, and ``X-Statement-Verified`` and ``X-Statement-Seal``
headers say the same; its CSV and PDF are refused (409, with the differences) when it does
not verify, since a document sent to a partner must be what was closed.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pipeline.api.db import Conn
from pipeline.api.errors import invalid
from pipeline.api.tokens import Principal, principal_of
from schemas.hub.party import PartyRef
from settlement.batches.seal import SealKeys, SealStatus
from settlement.disputes import StatementMark, mark_statement
from settlement.statements.build import statement_json
from settlement.statements.pdf import render_pdf
from settlement.store.db import Row
from settlement.store.disputes import statement_marks
from settlement.store.statements import (
    LIST_OFFSET_MAX,
    LIST_PAGE_DEFAULT,
    LIST_PAGE_MAX,
    StatementNotFound,
    Verification,
    batch_partner,
    list_statements,
    load_statement,
    verify,
)
from settlement.store.statements_csv import export_csv

router = APIRouter(prefix="/finance/v1", tags=["finance"])
_BOUND = (
    "a date (2025-05-01) or a time (2025-05-01T06:00:00); UTC unless it carries an offset "
    "(2025-05-01T06:00:00+02:00, …Z)"
)
_FROM = f"periods ending after this: {_BOUND}"
_TO = f"periods starting before this: {_BOUND}"
_bearer = HTTPBearer(auto_error=False, description="finance or partner token")


def _seal_keys(request: Request) -> SealKeys:
    keys: SealKeys = request.app.state.seal_keys
    return keys


Keys = Annotated[SealKeys, Depends(_seal_keys)]


def _principal(
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
    principal = principal_of(conn, credentials.credentials)
    if principal is None:
        raise HTTPException(401, "unknown token", {"WWW-Authenticate": "Bearer"})
    return principal


Who = Annotated[Principal, Depends(_principal)]


def listing_partner(who: Principal, partner: str | None, what: str) -> str | None:
    """The partner a listing is filtered to: the query's (422 when not CC*PID), and for a
    partner token always its own (403 when the query names another)."""
    if partner is not None:
        try:
            partner = str(PartyRef.parse(partner))
        except ValueError as exc:  # its text may hold the whole input and pydantic's URLs
            raise invalid("query.partner", "not a party reference CC*PID", partner) from exc
    if who.scope == "PARTNER":
        if partner is not None and partner != who.partner:
            raise HTTPException(403, f"this token may read only its own partner's {what}")
        partner = who.partner
    return partner


def _readable(conn: psycopg.Connection[Row], who: Principal, statement_id: int) -> None:
    """404 when the statement does not exist or belongs to another partner: one answer for
    both, or a partner token could count every statement in the hub."""
    try:
        partner = batch_partner(conn, statement_id)
    except StatementNotFound:
        partner = None
    if partner is None or not who.may_read(partner):
        raise HTTPException(404, f"no closed settlement batch {statement_id}")


@router.get(
    "/statements",
    summary="Closed statements, a page at a time (a partner token sees its own)",
    description="In the order they closed (id). At most `limit` from `offset`; the headers "
    "`X-Total-Count` (the whole listing), `X-Limit` and, when more follow, "
    '`Link: <…>; rel="next"` page through the rest, as OCPI does.',
)
def statements(
    conn: Conn,
    who: Who,
    keys: Keys,
    request: Request,
    response: Response,
    partner: Annotated[str | None, Query(description="CC*PID")] = None,
    period_from: Annotated[datetime | None, Query(alias="from", description=_FROM)] = None,
    period_to: Annotated[datetime | None, Query(alias="to", description=_TO)] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_PAGE_MAX)] = LIST_PAGE_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=LIST_OFFSET_MAX)] = 0,
) -> list[dict[str, Any]]:
    partner = listing_partner(who, partner, "statements")
    page = list_statements(conn, keys, partner, period_from, period_to, limit, offset)
    failing = (SealStatus.INVALID, SealStatus.UNKNOWN_KEY)
    response.headers["X-Statements-Unverified"] = str(
        sum(1 for s in page.items if s.seal_status in failing)
    )
    response.headers["X-Total-Count"] = str(page.total)
    response.headers["X-Limit"] = str(limit)
    if page.next_offset is not None:
        following = request.url.include_query_params(offset=page.next_offset, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return [s.json() for s in page.items]


def _verified_headers(result: Verification) -> dict[str, str]:
    return {
        "X-Statement-Verified": "true" if result.matches else "false",
        "X-Statement-Seal": result.seal_status.value,
    }


def _document(conn: psycopg.Connection[Row], keys: SealKeys, statement_id: int) -> dict[str, str]:
    """Verify a statement before serving it as a document: 409 when it does not verify."""
    result = verify(conn, statement_id, keys)
    if not result.matches:
        raise HTTPException(
            409,
            {
                "message": "this statement no longer matches what was closed and sealed; "
                "it is not served as a document (see its JSON for the differences)",
                "differences": list(result.differences),
            },
            _verified_headers(result),
        )
    return _verified_headers(result)


@router.get(
    "/statements/{statement_id}.csv", summary="One statement as CSV", response_class=Response
)
def statement_csv(statement_id: int, conn: Conn, who: Who, keys: Keys) -> Response:
    _readable(conn, who, statement_id)
    verified = _document(conn, keys, statement_id)
    buffer = io.StringIO()
    export_csv(conn, statement_id, buffer, _marks(conn, who, statement_id))
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{statement_id}.csv"',
            **verified,
        },
    )


def _marks(
    conn: psycopg.Connection[Row], who: Principal, statement_id: int
) -> tuple[StatementMark, ...]:
    """The disputes on a statement's lines as of now, outside the seal, in every format: a
    partner sees the ones it opened (the disputes API's rule)."""
    return tuple(m for m in statement_marks(conn, statement_id) if who.may_read(m.opened_by))


@router.get(
    "/statements/{statement_id}.pdf", summary="One statement as PDF", response_class=Response
)
def statement_pdf(statement_id: int, conn: Conn, who: Who, keys: Keys) -> Response:
    _readable(conn, who, statement_id)
    verified = _document(conn, keys, statement_id)
    data = render_pdf(load_statement(conn, statement_id), _marks(conn, who, statement_id))
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{statement_id}.pdf"',
            **verified,
        },
    )


@router.get(
    "/statements/{statement_id}",
    summary="One statement: header, stored totals, VAT, lines, and its verification",
)
def statement(
    statement_id: int, conn: Conn, who: Who, keys: Keys, response: Response
) -> dict[str, Any]:
    _readable(conn, who, statement_id)
    result = verify(conn, statement_id, keys)
    marks = _marks(conn, who, statement_id)
    body = mark_statement(statement_json(load_statement(conn, statement_id)), marks)
    body["verification"] = result.json()
    if not result.matches:
        body["verification"]["note"] = (
            "the ledger no longer matches this statement: the totals are the stored figures "
            "as closed; the lines, VAT and role totals are what the ledger holds now"
        )
    response.headers.update(_verified_headers(result))
    return body
