"""OCPI 2.2.1 Locations, the receiver interface (mod_locations.asciidoc): a CPO pushes its
Locations, EVSEs and Connectors; the hub keeps every version and prices each CDR in the
time zone of its location.

    {locations}/{country_code}/{party_id}/{location_id}                        a Location
    {locations}/{country_code}/{party_id}/{location_id}/{evse_uid}             an EVSE
    {locations}/{country_code}/{party_id}/{location_id}/{evse_uid}/{conn_id}   a Connector

    PUT   the object at that depth, whole: it replaces the one with that id, or is added
          (201 for an object new to the hub, 200 otherwise)
    PATCH the fields to change, with `last_updated` (without it: 2001, as the spec says);
          merged into the object at that depth (200)
    GET   the object at that depth as stored; 404 when unknown
    POST, DELETE -> 405 ("n/a": an EVSE is removed by PATCHing its status to REMOVED)

Either way the hub stores the whole Location as a new version, as `roamclear locations
publish` does (pipeline.reference), with its parents' last_updated set to the child's when
that is later (settlement.locations). An EVSE or Connector pushed for a Location the hub
does not have, or a PATCH of an object it does not have, is answered 2003 "Unknown
Location": push the Location (or the EVSE) first.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline import reference
from pipeline.api.db import Conn
from pipeline.ocpi.auth import Caller
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
from schemas.base import OcpiModel
from schemas.hub.party import PartyRef
from schemas.ocpi.location import Connector, Evse, Location
from schemas.validation import SchemaInvalid, Violation, parse_model
from settlement import locations as tree
from settlement.store import reference_store
from settlement.store.db import Row

MODULE: Final = "locations"
LOCATIONS_PATH: Final = "/ocpi/2.2.1/locations"  # pipeline.ocpi.modules lists it
_LOCATION: Final = LOCATIONS_PATH + "/{country_code}/{party_id}/{location_id}"
_EVSE: Final = _LOCATION + "/{evse_uid}"
_CONNECTOR: Final = _EVSE + "/{connector_id}"
_ID_NAMES: Final = ("location_id", "evse_uid", "connector_id")
_CHILDREN: Final = (("evses", "uid"), ("connectors", "id"))  # list field, id field per depth

router = APIRouter(tags=["ocpi"])
_WHOLE: Final = {
    name: json_body(f"an OCPI 2.2.1 {name}, whole (schemas/json/ocpi.location.schema.json)")
    for name in ("Location", "EVSE", "Connector")
}
_FIELDS: Final = json_body("the fields to change, with last_updated (OCPI 2.2.1 PATCH)")


class Depth(IntEnum):
    """What a URL addresses: how many ids follow the party."""

    LOCATION = 1
    EVSE = 2
    CONNECTOR = 3


_MODELS: Final[dict[Depth, type[OcpiModel]]] = {
    Depth.LOCATION: Location,
    Depth.EVSE: Evse,
    Depth.CONNECTOR: Connector,
}


def _depth(received: Received) -> tuple[Depth, tuple[str, ...]]:
    ids = received.path[2:]
    return Depth(len(ids)), ids


def _check_ids(depth: Depth, ids: tuple[str, ...], cpo: PartyRef, body: Any) -> list[Violation]:
    """URL ids too long, and body ids that differ from the URL's."""
    must_equal = {
        Depth.LOCATION: [
            ("country_code", cpo.country_code),
            ("party_id", cpo.party_id),
            ("id", ids[0]),
        ],
        Depth.EVSE: [("uid", ids[-1])],
        Depth.CONNECTOR: [("id", ids[-1])],
    }[depth]
    return id_problems(list(zip(_ID_NAMES, ids, strict=False)), body, must_equal)


def _unknown(what: str) -> Decision:
    return refused(
        OcpiStatus.UNKNOWN_LOCATION, f"unknown {what}: push it (PUT) before what it holds"
    )


def _current(
    conn: psycopg.Connection[Row], cpo: PartyRef, location_id: str
) -> tuple[str, Location | None]:
    """Lock the location for this transaction and read its current version."""
    key = reference_store.lock_location(conn, cpo, location_id)
    body = reference_store.current_location(conn, cpo, location_id)
    return key, None if body is None else Location.model_validate(body)


def _store(conn: psycopg.Connection[Row], location: Location, created: bool) -> Decision:
    (stored,), outgoing = reference.store_locations(conn, [location])
    message = "Success" if stored.revision is not None else "Success: no change"
    return accepted(stored.key, created, outgoing, message)


def _put(conn: psycopg.Connection[Row], received: Received, cpo: PartyRef, body: Any) -> Decision:
    depth, ids = _depth(received)
    model = _MODELS[depth]
    problems = _check_ids(depth, ids, cpo, body)
    if not isinstance(body, dict):
        return invalid([violation("$", f"must be a {model.__name__} object", "model_type")])
    try:
        pushed = parse_model(model, body)
    except SchemaInvalid as exc:
        return invalid([*exc.violations, *problems])
    if problems:
        return invalid(problems)
    key, current = _current(conn, cpo, ids[0])
    if isinstance(pushed, Location):
        return _store(conn, pushed, current is None)
    if current is None:
        return _unknown(f"location {key}")
    if isinstance(pushed, Evse):
        created = tree.evse_of(current, pushed.uid) is None
        return _store(conn, tree.with_evse(current, pushed), created)
    assert isinstance(pushed, Connector)
    evse = tree.evse_of(current, ids[1])
    if evse is None:
        return _unknown(f"EVSE {ids[1]} of location {key}")
    created = tree.connector_of(evse, pushed.id) is None
    return _store(conn, tree.with_connector(current, evse.uid, pushed), created)


def _patch(conn: psycopg.Connection[Row], received: Received, cpo: PartyRef, body: Any) -> Decision:
    depth, ids = _depth(received)
    if not isinstance(body, dict):
        return invalid([violation("$", "must be an object of the fields to change", "model_type")])
    problems = _check_ids(depth, ids, cpo, body)
    if body.get("last_updated") is None:
        problems.append(violation("last_updated", "required in every PATCH", "missing"))
    if problems:
        return invalid(problems)
    key, current = _current(conn, cpo, ids[0])
    if current is None:
        return _unknown(f"location {key}")
    try:
        if depth is Depth.LOCATION:
            return _store(conn, tree.patched(current, body), False)
        evse = tree.evse_of(current, ids[1])
        if evse is None:
            return _unknown(f"EVSE {ids[1]} of location {key}")
        if depth is Depth.EVSE:
            return _store(conn, tree.with_evse(current, tree.patched(evse, body)), False)
        connector = tree.connector_of(evse, ids[2])
        if connector is None:
            return _unknown(f"connector {ids[2]} of EVSE {ids[1]} of location {key}")
        patched = tree.patched(connector, body)
        return _store(conn, tree.with_connector(current, evse.uid, patched), False)
    except SchemaInvalid as exc:
        return invalid(exc.violations)


def _get(caller: Caller, conn: psycopg.Connection[Row], path: tuple[str, ...]) -> Response:
    what = "location object " + "/".join(path)
    cpo = owned(caller, path[0], path[1])
    ids = path[2:]
    if cpo is None or not all(addressable(i) for i in ids):
        return not_found(what)
    document = reference_store.current_location(conn, cpo, ids[0])
    for child_id, (children, id_field) in zip(ids[1:], _CHILDREN, strict=False):
        if document is None:
            break
        document = next(
            (c for c in document.get(children, ()) if tree.same_id(c[id_field], child_id)), None
        )
    return not_found(what) if document is None else found(document)


async def _receive(request: Request, conn: Conn, caller: Caller, path: tuple[str, ...]) -> Response:
    decide = _put if request.method == "PUT" else _patch
    return await receive(request, conn, caller, MODULE, path, decide)


@router.put(_LOCATION, summary="Push a Location (OCPI 2.2.1)", openapi_extra=_WHOLE["Location"])
@router.patch(_LOCATION, summary="Update fields of a Location", openapi_extra=_FIELDS)
async def push_location(
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    location_id: str,
) -> Response:
    return await _receive(request, conn, caller, (country_code, party_id, location_id))


@router.put(_EVSE, summary="Push an EVSE of a Location (OCPI 2.2.1)", openapi_extra=_WHOLE["EVSE"])
@router.patch(_EVSE, summary="Update fields of an EVSE, e.g. its status", openapi_extra=_FIELDS)
async def push_evse(
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
) -> Response:
    return await _receive(request, conn, caller, (country_code, party_id, location_id, evse_uid))


@router.put(
    _CONNECTOR,
    summary="Push a Connector of an EVSE (OCPI 2.2.1)",
    openapi_extra=_WHOLE["Connector"],
)
@router.patch(_CONNECTOR, summary="Update fields of a Connector", openapi_extra=_FIELDS)
async def push_connector(
    request: Request,
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
    connector_id: str,
) -> Response:
    path = (country_code, party_id, location_id, evse_uid, connector_id)
    return await _receive(request, conn, caller, path)


@router.get(_LOCATION, summary="A Location as the hub holds it (OCPI 2.2.1)")
def get_location(
    caller: LimitedCaller, conn: Conn, country_code: str, party_id: str, location_id: str
) -> Response:
    return _get(caller, conn, (country_code, party_id, location_id))


@router.get(_EVSE, summary="An EVSE as the hub holds it (OCPI 2.2.1)")
def get_evse(
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
) -> Response:
    return _get(caller, conn, (country_code, party_id, location_id, evse_uid))


@router.get(_CONNECTOR, summary="A Connector as the hub holds it (OCPI 2.2.1)")
def get_connector(
    caller: LimitedCaller,
    conn: Conn,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
    connector_id: str,
) -> Response:
    return _get(caller, conn, (country_code, party_id, location_id, evse_uid, connector_id))
