"""The hub as SENDER (OCPI 2.2.1): partners GET lists of CDRs, tariffs and locations, page by
page (pipeline.ocpi.pagination says how).

    GET /ocpi/2.2.1/cdrs         the CDRs the caller is a party to, as the eMSP received
                                 them (every delivery state: pushed or pulled), oldest first
    GET /ocpi/2.2.1/tariffs      an eMSP: every CPO's current tariffs; a CPO: its own
    GET /ocpi/2.2.1/locations    an eMSP: every CPO's current Locations; a CPO: its own

A CDR is visible to the eMSP it was delivered to and to the CPO that sent it; a partner that
is both sees both kinds, each CDR once (the CDR's country_code/party_id name its CPO, its
cdr_token the eMSP). The single-object GETs of the receivers stay where they are
(`/cdrs/{id}`, `/tariffs/{cc}/{pid}/{id}`, `/locations/{cc}/{pid}/{id}…`): these routes are
the module URLs themselves, with nothing after them. OCPI-to/from routing headers are not
needed (the token says who asks, and the hub itself answers).
"""

from __future__ import annotations

from typing import Final

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.api.db import Conn
from pipeline.ocpi.auth import Caller
from pipeline.ocpi.cdrs import CDRS_PATH
from pipeline.ocpi.locations import LOCATIONS_PATH
from pipeline.ocpi.pagination import page_response, window
from pipeline.ocpi.tariffs import TARIFFS_PATH
from pipeline.ocpi.throttle import LimitedCaller
from settlement.store import ocpi_sender, reference_store
from settlement.store.db import Row

# A CDR document is a few kB (one with every period allowed, about 135 kB); a Location with a
# few hundred EVSEs some 200 kB: these bound a page's size as well as its rows.
CDRS_PAGE_MAX: Final = 100
TARIFFS_PAGE_MAX: Final = 100
LOCATIONS_PAGE_MAX: Final = 50
_SEES_EVERY_CPO: Final = frozenset({"EMSP", "BOTH"})

cdrs_router = APIRouter(tags=["ocpi"])
tariffs_router = APIRouter(tags=["ocpi"])
locations_router = APIRouter(tags=["ocpi"])


def _whose(conn: psycopg.Connection[Row], caller: Caller) -> str | None:
    """The CPO whose reference data the caller may list: None (every CPO's) for an eMSP,
    the caller itself otherwise (a CPO reads back what it pushed, not its competitors')."""
    role = reference_store.partner_role(conn, caller.partner)
    return None if role in _SEES_EVERY_CPO else str(caller.partner)


@cdrs_router.get(CDRS_PATH, summary="OCPI 2.2.1 CDRs sender: the caller's CDRs, paginated")
def list_cdrs(request: Request, caller: LimitedCaller, conn: Conn) -> Response:
    asked = window(request, CDRS_PAGE_MAX)
    page = ocpi_sender.cdrs_page(conn, str(caller.partner), asked)
    return page_response(request, CDRS_PATH, asked, page, CDRS_PAGE_MAX)


@tariffs_router.get(TARIFFS_PATH, summary="OCPI 2.2.1 Tariffs sender: current tariffs, paginated")
def list_tariffs(request: Request, caller: LimitedCaller, conn: Conn) -> Response:
    asked = window(request, TARIFFS_PAGE_MAX)
    page = ocpi_sender.tariffs_page(conn, _whose(conn, caller), asked)
    return page_response(request, TARIFFS_PATH, asked, page, TARIFFS_PAGE_MAX)


@locations_router.get(
    LOCATIONS_PATH, summary="OCPI 2.2.1 Locations sender: current Locations, paginated"
)
def list_locations(request: Request, caller: LimitedCaller, conn: Conn) -> Response:
    asked = window(request, LOCATIONS_PAGE_MAX)
    page = ocpi_sender.locations_page(conn, _whose(conn, caller), asked)
    return page_response(request, LOCATIONS_PATH, asked, page, LOCATIONS_PAGE_MAX)
