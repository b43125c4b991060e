"""OCPI 2.2.1 Tariffs, the receiver interface (mod_tariffs.asciidoc): a CPO pushes its
tariffs, and the hub prices that CPO's CDRs with them.

    PUT    /ocpi/2.2.1/tariffs/{country_code}/{party_id}/{tariff_id}    a Tariff
           -> a new version (201 for a tariff new to the hub, 200 otherwise), stored as
              `roamclear tariffs publish` stores it (pipeline.reference), so the next CDR
              that names it is priced by it
    DELETE same URL -> recorded (the versions stay: a session that started before the DELETE
           is still priced by the version in force at its start; one that starts later finds
           no tariff); 404 for a tariff the hub never had, 200 again for a repeated DELETE
    GET    same URL -> the newest version, as stored; 404 when unknown or deleted
    POST, PATCH -> 405 ("n/a" in the spec)

A tariff version that reuses a stored last_updated with other content is refused with 2001:
versions are chosen by last_updated, so a change needs a new one. Everything else about
the request (ownership, JSON, receipts) is pipeline.ocpi.client_owned's.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline import reference
from pipeline.api.db import Conn
from pipeline.ocpi.client_owned import (
    Decision,
    Received,
    accepted,
    addressable,
    found,
    id_problems,
    invalid,
    json_body,
    not_found,
    owned,
    receive,
    refused,
    violation,
)
from pipeline.ocpi.envelope import OcpiStatus
from pipeline.ocpi.throttle import LimitedCaller
from schemas.hub.party import PartyRef
from schemas.validation import SchemaInvalid, parse_tariff
from settlement.store import reference_store
from settlement.store.db import Row

MODULE: Final = "tariffs"
TARIFFS_PATH: Final = "/ocpi/2.2.1/tariffs"  # pipeline.ocpi.modules lists it
_OBJECT: Final = TARIFFS_PATH + "/{country_code}/{party_id}/{tariff_id}"

router = APIRouter(tags=["ocpi"])


def _put(conn: psycopg.Connection[Row], received: Received, cpo: PartyRef, body: Any) -> Decision:
    tariff_id = received.path[2]
    problems = id_problems(
        [("tariff_id", tariff_id)],
        body,
        [("country_code", cpo.country_code), ("party_id", cpo.party_id), ("id", tariff_id)],
    )
    if not isinstance(body, dict):
        return invalid([violation("$", "must be a Tariff object", "model_type"), *problems])
    try:
        tariff = parse_tariff(body)
    except SchemaInvalid as exc:
        return invalid([*exc.violations, *problems])
    if problems:
        return invalid(problems)
    try:
        (stored,), outgoing = reference.store_tariffs(conn, [tariff], received.at)
    except reference_store.TariffVersionConflict as exc:
        return refused(OcpiStatus.INVALID_PARAMETERS, str(exc))
    message = "Success" if stored.new_version else "Success: this version was stored already"
    return accepted(stored.key, stored.created, outgoing, message)


def _delete(
    conn: psycopg.Connection[Row], received: Received, cpo: PartyRef, body: Any
) -> Decision:
    tariff_id = received.path[2]
    key = reference_store.object_key(cpo, tariff_id)
    if not addressable(tariff_id):
        return refused(OcpiStatus.CLIENT_ERROR, f"unknown tariff {key}", 404)
    result, outgoing = reference.delete_tariff(conn, cpo, tariff_id, received.at)
    if result is reference_store.TariffDeletion.UNKNOWN:
        return refused(OcpiStatus.CLIENT_ERROR, f"unknown tariff {key}", 404)
    if result is reference_store.TariffDeletion.ALREADY_DELETED:
        return accepted(key, False, None, "Success: the tariff was deleted already")
    return accepted(
        key,
        False,
        outgoing,
        "Success: deleted; CDRs of sessions that started before now are still priced by it",
    )


@router.put(
    _OBJECT,
    summary="Push a new or updated Tariff (OCPI 2.2.1)",
    openapi_extra=json_body("an OCPI 2.2.1 Tariff (schemas/json/ocpi.tariff.schema.json)"),
)
async def put_tariff(
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    tariff_id: str,
) -> Response:
    return await receive(request, conn, caller, MODULE, (country_code, party_id, tariff_id), _put)


@router.delete(_OBJECT, summary="Delete a Tariff no longer in use (OCPI 2.2.1)")
async def delete_tariff(
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    tariff_id: str,
) -> Response:
    path = (country_code, party_id, tariff_id)
    return await receive(request, conn, caller, MODULE, path, _delete)


@router.get(_OBJECT, summary="A Tariff as the hub holds it (OCPI 2.2.1)")
def get_tariff(
    caller: LimitedCaller, conn: Conn, country_code: str, party_id: str, tariff_id: str
) -> Response:
    what = f"tariff {country_code}/{party_id}/{tariff_id}"
    cpo = owned(caller, country_code, party_id)
    if cpo is None or not addressable(tariff_id):
        return not_found(what)
    body = reference_store.current_tariff(conn, cpo, tariff_id)
    return not_found(what) if body is None else found(body)
