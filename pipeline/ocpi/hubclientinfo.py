"""OCPI 2.2.1 HubClientInfo, the hub's SENDER interface: a connected party GETs the
ClientInfo of every other partner (PLANNED, CONNECTED, OFFLINE or SUSPENDED), paginated like
every list (pipeline.ocpi.pagination), ordered by party. The hub pushes the same objects to
parties with a receiver endpoint (pipeline.delivery.client_info). No routing headers: the
module must not carry them.

    GET /ocpi/2.2.1/hubclientinfo?date_from=…&offset=0&limit=100
"""

from __future__ import annotations

from typing import Final

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.api.db import Conn
from pipeline.ocpi.pagination import page_response, window
from pipeline.ocpi.paths import VERSION_PATH
from pipeline.ocpi.throttle import LimitedCaller
from settlement.store.hub_client_info import client_infos_of
from settlement.store.ocpi_sender import Page

MODULE: Final = "hubclientinfo"
HUBCLIENTINFO_PATH: Final = f"{VERSION_PATH}/{MODULE}"
PAGE_MAX: Final = 500  # a ClientInfo is about 120 bytes

router = APIRouter(tags=["ocpi"])


@router.get(HUBCLIENTINFO_PATH, summary="OCPI 2.2.1 HubClientInfo sender, paginated")
def list_client_infos(request: Request, caller: LimitedCaller, conn: Conn) -> Response:
    asked = window(request, PAGE_MAX)
    listed = [
        info
        for info in client_infos_of(conn)
        if info.partner != str(caller.partner)
        and (asked.date_from is None or info.last_updated >= asked.date_from)
        and (asked.date_to is None or info.last_updated < asked.date_to)
    ]
    chosen = listed[asked.offset : asked.offset + asked.limit]
    page = Page(len(listed), tuple(orjson.dumps(info.as_ocpi()) for info in chosen))
    return page_response(request, HUBCLIENTINFO_PATH, asked, page, PAGE_MAX)
