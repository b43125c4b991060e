"""The finance API's CDR trace: everything that made one CDR's figures (settlement.cdr_trace).

    GET /finance/v1/cdrs/{cdr_key}/trace      e.g. /finance/v1/cdrs/NL*TNM*CDR-1/trace

A finance token reads any CDR's trace; a partner token only the trace of a CDR it is the CPO
or the eMSP of, and without the records other partners submitted under the key (counted in
`hidden_records`). Any other CDR is 404, the same answer as a key nothing names, so a partner
cannot learn which CDRs exist. A key that is not CC*PID*ID is 422, naming the field and why
(pipeline.api.errors).
The JSON is `roamclear trace --json`'s: money as decimal strings.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from pipeline.api.db import Conn
from pipeline.api.errors import invalid
from pipeline.api.finance import Who
from schemas.hub.party import CdrKey
from settlement.store.trace import TraceNotFound, read_trace

router = APIRouter(prefix="/finance/v1", tags=["finance"])


@router.get(
    "/cdrs/{cdr_key:path}/trace",
    summary="Everything that made one CDR's figures (a partner token: its own CDRs)",
)
def cdr_trace(cdr_key: str, conn: Conn, who: Who) -> dict[str, Any]:
    try:
        key = CdrKey.parse(cdr_key)
    except ValueError as exc:
        raise invalid("path.cdr_key", "not a CDR key CC*PID*ID", cdr_key) from exc
    missing = HTTPException(404, f"no CDR {key} to trace")
    try:
        found = read_trace(conn, key)
    except TraceNotFound:
        raise missing from None
    if who.scope != "FINANCE":
        if who.partner is None or who.partner not in found.parties():
            raise missing
        found = found.seen_by(who.partner)
    return found.as_json()
