"""The finance API: statements of closed settlement batches, for finance and for partners.

    GET /finance/v1/statements?partner=NL*TNM&from=2025-05-01&to=2025-06-01
    GET /finance/v1/statements/{id}          JSON (header, totals, VAT, lines)
    GET /finance/v1/statements/{id}.csv      CSV (settlement.statements.csv_export)
    GET /finance/v1/statements/{id}.pdf      PDF

Bearer tokens (``roamclear statements token create``): a finance token reads every
statement, a partner token only its own partner's: another partner's statement is 404, the
same answer as a statement that does not exist, so a partner cannot count the hub's
statements by probing ids. No or an unknown token is 401. Money is always a decimal string.

Figures are the stored ones, as closed and sealed. The list checks each row's seal against
the stored row (``seal_status``; no ledger scan) and counts the failures in
``X-Statements-Unverified``. One statement is verified against the ledger as well: its JSON
carries a ``verification`` object, and ``X-Statement-Verified`` and ``X-Statement-Seal``
headers say the same; its CSV and PDF are refused (409, with the differences) when it does
not verify, since a document sent to a partner must be what was closed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from pipeline.api.errors import invalid
from pipeline.api.tokens import Principal, principal_of
from schemas.hub.party import PartyRef
from settlement.batches.seal import SealKeys, SealStatus
from settlement.statements.build import statement_json
from settlement.statements.pdf import render_pdf
from settlement.store.db import Row
from settlement.store.statements import (
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


def _connection(request: Request) -> Iterator[psycopg.Connection[Row]]:
    pool: ConnectionPool[psycopg.Connection[Row]] = request.app.state.finance_pool
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection[Row], Depends(_connection)]


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


def _readable(conn: psycopg.Connection[Row], who: Principal, statement_id: int) -> None:
    """404 when the statement does not exist or belongs to another partner: one answer for
    both, or a partner token could count every statement in the hub."""
    try:
        partner = batch_partner(conn, statement_id)
    except StatementNotFound:
        partner = None
    if partner is None or not who.may_read(partner):
        raise HTTPException(404, f"no closed settlement batch {statement_id}")


@router.get("/statements", summary="Closed statements (a partner token sees its own)")
def statements(
    conn: Conn,
    who: Who,
    keys: Keys,
    response: Response,
    partner: Annotated[str | None, Query(description="CC*PID")] = None,
    period_from: Annotated[datetime | None, Query(alias="from", description=_FROM)] = None,
    period_to: Annotated[datetime | None, Query(alias="to", description=_TO)] = None,
) -> list[dict[str, Any]]:
    if partner is not None:
        try:
            partner = str(PartyRef.parse(partner))
        except ValueError as exc:  # its text may hold the whole input and pydantic's URLs
            raise invalid("query.partner", "not a party reference CC*PID", partner) from exc
    if who.scope == "PARTNER":
        if partner is not None and partner != who.partner:
            raise HTTPException(403, "this token may read only its own partner's statements")
        partner = who.partner
    found = list_statements(conn, keys, partner, period_from, period_to)
    failing = sum(1 for s in found if s.seal_status in (SealStatus.INVALID, SealStatus.UNKNOWN_KEY))
    response.headers["X-Statements-Unverified"] = str(failing)
    return [s.json() for s in found]


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
    export_csv(conn, statement_id, buffer)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{statement_id}.csv"',
            **verified,
        },
    )


@router.get(
    "/statements/{statement_id}.pdf", summary="One statement as PDF", response_class=Response
)
def statement_pdf(statement_id: int, conn: Conn, who: Who, keys: Keys) -> Response:
    _readable(conn, who, statement_id)
    verified = _document(conn, keys, statement_id)
    data = render_pdf(load_statement(conn, statement_id))
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
    body = statement_json(load_statement(conn, statement_id))
    body["verification"] = result.json()
    if not result.matches:
        body["verification"]["note"] = (
            "the ledger no longer matches this statement: the totals are the stored figures "
            "as closed; the lines, VAT and role totals are what the ledger holds now"
        )
    response.headers.update(_verified_headers(result))
    return body
