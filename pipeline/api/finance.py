"""The finance API: statements of closed settlement batches, for finance and for partners.

    GET /finance/v1/statements?partner=NL*TNM&from=2025-05-01&to=2025-06-01
    GET /finance/v1/statements/{id}          JSON (header, totals, VAT, lines)
    GET /finance/v1/statements/{id}.csv      CSV (settlement.statements.csv_export)
    GET /finance/v1/statements/{id}.pdf      PDF

Bearer tokens (``roamclear statements token create``): a finance token reads every
statement, a partner token only its own partner's (403 otherwise); no or an unknown token
is 401. Money is always a decimal string.
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

from pipeline.api.tokens import Principal, principal_of
from schemas.hub.party import PartyRef
from settlement.statements.build import statement_json
from settlement.statements.pdf import render_pdf
from settlement.store.db import Row
from settlement.store.statements import (
    StatementNotFound,
    batch_partner,
    list_statements,
    load_statement,
)
from settlement.store.statements_csv import export_csv

router = APIRouter(prefix="/finance/v1", tags=["finance"])
_bearer = HTTPBearer(auto_error=False, description="finance or partner token")


def _connection(request: Request) -> Iterator[psycopg.Connection[Row]]:
    pool: ConnectionPool[psycopg.Connection[Row]] = request.app.state.finance_pool
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection[Row], Depends(_connection)]


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
    try:
        partner = batch_partner(conn, statement_id)
    except StatementNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    if not who.may_read(partner):
        raise HTTPException(403, "this token may read only its own partner's statements")


@router.get("/statements", summary="Closed statements (a partner token sees its own)")
def statements(
    conn: Conn,
    who: Who,
    partner: Annotated[str | None, Query(description="CC*PID")] = None,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> list[dict[str, Any]]:
    if partner is not None:
        try:
            partner = str(PartyRef.parse(partner))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
    if who.scope == "PARTNER":
        if partner is not None and partner != who.partner:
            raise HTTPException(403, "this token may read only its own partner's statements")
        partner = who.partner
    return [s.json() for s in list_statements(conn, partner, period_from, period_to)]


@router.get(
    "/statements/{statement_id}.csv", summary="One statement as CSV", response_class=Response
)
def statement_csv(statement_id: int, conn: Conn, who: Who) -> Response:
    _readable(conn, who, statement_id)
    buffer = io.StringIO()
    export_csv(conn, statement_id, buffer)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statement-{statement_id}.csv"'},
    )


@router.get(
    "/statements/{statement_id}.pdf", summary="One statement as PDF", response_class=Response
)
def statement_pdf(statement_id: int, conn: Conn, who: Who) -> Response:
    _readable(conn, who, statement_id)
    data = render_pdf(load_statement(conn, statement_id))
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="statement-{statement_id}.pdf"'},
    )


@router.get("/statements/{statement_id}", summary="One statement: header, totals, VAT, lines")
def statement(statement_id: int, conn: Conn, who: Who) -> dict[str, Any]:
    _readable(conn, who, statement_id)
    return statement_json(load_statement(conn, statement_id))
