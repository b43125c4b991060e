"""A Location and the EVSEs and Connectors inside it, updated the way OCPI 2.2.1's Locations
receiver is (mod_locations.asciidoc, PUT and PATCH): at any depth, the result is always the
whole Location, which the hub stores as a new version.

- PUT of an EVSE or a Connector replaces the one with that uid/id, or adds it at the end;
- PATCH merges the fields sent into the object at that depth (fields not sent stay; a field
  sent replaces the whole value, lists included);
- either at EVSE or Connector depth "SHALL also set the new last_updated value on the
  parent" objects: a parent's last_updated becomes the later of its own and the child's,
  so it never moves backwards when updates arrive out of order (the field means "when this
  Location or one of its EVSEs or Connectors were last updated").

Unknown fields survive at every depth: the models keep them, and a merge starts from the
stored object with them.

    location = with_connector(location, "3256", connector)   # EVSE 3256 must exist
    evse = patched(evse, {"status": "CHARGING", "last_updated": "2026-12-03T10:00:00Z"})
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from schemas.base import OcpiModel
from schemas.ocpi.location import Connector, Evse, Location
from schemas.validation import parse_model

ModelT = TypeVar("ModelT", bound=OcpiModel)


def same_id(left: str, right: str) -> bool:
    """OCPI ids are CiStrings: compared without regard to case."""
    return left.upper() == right.upper()


def evse_of(location: Location, evse_uid: str) -> Evse | None:
    return next((e for e in location.evses if same_id(e.uid, evse_uid)), None)


def connector_of(evse: Evse, connector_id: str) -> Connector | None:
    return next((c for c in evse.connectors if same_id(c.id, connector_id)), None)


def _later(current: datetime, child: datetime) -> datetime:
    return max(current, child)


def with_evse(location: Location, evse: Evse) -> Location:
    """The Location with `evse` in place of the EVSE with its uid (or added)."""
    evses = list(location.evses)
    index = next((i for i, e in enumerate(evses) if same_id(e.uid, evse.uid)), None)
    if index is None:
        evses.append(evse)
    else:
        evses[index] = evse
    return location.model_copy(
        update={
            "evses": tuple(evses),
            "last_updated": _later(location.last_updated, evse.last_updated),
        }
    )


def with_connector(location: Location, evse_uid: str, connector: Connector) -> Location:
    """The Location with `connector` in place in EVSE `evse_uid` (or added); the EVSE must
    exist (KeyError otherwise)."""
    evse = evse_of(location, evse_uid)
    if evse is None:
        raise KeyError(evse_uid)
    connectors = list(evse.connectors)
    index = next((i for i, c in enumerate(connectors) if same_id(c.id, connector.id)), None)
    if index is None:
        connectors.append(connector)
    else:
        connectors[index] = connector
    updated = evse.model_copy(
        update={
            "connectors": tuple(connectors),
            "last_updated": _later(evse.last_updated, connector.last_updated),
        }
    )
    return with_evse(location, updated)


def patched(current: ModelT, changes: Mapping[str, Any]) -> ModelT:
    """`current` with the fields in `changes` replaced, validated as a whole (raises
    schemas.validation.SchemaInvalid, paths relative to the object)."""
    merged = {**current.model_dump(mode="python", exclude_unset=True), **changes}
    return parse_model(type(current), merged)
