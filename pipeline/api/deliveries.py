"""CDR deliveries over the finance API: what `roamclear deliveries list|show` shows, for
finance (every delivery) and for a partner (those of its own CDRs: as the eMSP that receives
them or the CPO that sent them).

    GET /finance/v1/deliveries?partner=DE*EMP&state=dead&limit=100&offset=0
    GET /finance/v1/deliveries/{id}          with every attempt (request ids, answers)

Pages as the statements do: `X-Total-Count`, `X-Limit`, `Link: <…>; rel="next"`. A delivery
of another partner's CDR is 404, the same answer as one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request, Response

from pipeline.api.db import Conn
from pipeline.api.errors import invalid
from pipeline.api.finance import Who
from schemas.hub.party import PartyRef
from settlement.store import deliveries as store
from settlement.store.deliveries import DeliveryState

router = APIRouter(prefix="/finance/v1", tags=["finance"])
PAGE_MAX: Final = 1000
PAGE_DEFAULT: Final = 100


@router.get(
    "/deliveries",
    summary="CDR deliveries to eMSPs, newest first (a partner token sees its own CDRs')",
)
def deliveries(
    conn: Conn,
    who: Who,
    request: Request,
    response: Response,
    partner: Annotated[str | None, Query(description="CC*PID: the eMSP or the CPO")] = None,
    state: Annotated[
        str | None, Query(description="pull, pending, retrying, delivered or dead")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    if partner is not None:
        try:
            partner = str(PartyRef.parse(partner))
        except ValueError as exc:
            raise invalid("query.partner", "not a party reference CC*PID", partner) from exc
    wanted = None
    if state is not None:
        try:
            wanted = DeliveryState(state.upper())
        except ValueError as exc:
            raise invalid("query.state", "not a delivery state", state) from exc
    if who.scope == "PARTNER":
        if partner is not None and partner != who.partner:
            raise HTTPException(403, "this token may read only its own partner's deliveries")
        partner = who.partner
    rows = store.list_deliveries(conn, partner, wanted, limit, offset)
    per_state = store.counts(conn, partner)
    total = per_state[wanted.value] if wanted is not None else sum(per_state.values())
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Limit"] = str(limit)
    if offset + len(rows) < total:
        following = request.url.include_query_params(offset=offset + len(rows), limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return {"counts": per_state, "deliveries": [row.as_json() for row in rows]}


@router.get("/deliveries/{delivery_id}", summary="One delivery with every attempt")
def delivery(delivery_id: int, conn: Conn, who: Who) -> dict[str, Any]:
    found = store.show(conn, str(delivery_id))
    if not found or not (
        who.may_read(found[0].delivery.emsp) or who.may_read(found[0].delivery.cpo)
    ):
        raise HTTPException(404, f"no delivery {delivery_id}")
    return found[0].as_json()
