"""A Location updated at EVSE and Connector depth: replace or add, PATCH merges, parents'
last_updated follows the child's (never backwards), unknown fields survive."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from schemas.base import loads_exact
from schemas.ocpi.location import Connector, Evse, Location
from schemas.validation import SchemaInvalid
from settlement.locations import connector_of, evse_of, patched, with_connector, with_evse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)


def _data() -> dict[str, Any]:
    raw = resources.files("pipeline.samples").joinpath("location_nl_tnm_ams.json").read_bytes()
    data: dict[str, Any] = loads_exact(raw)
    data["evses"][0]["vendor_slot"] = 7
    return data


def location() -> Location:
    return Location.model_validate(_data())


def evse(uid: str, last_updated: datetime = T1, **changes: Any) -> Evse:
    data = copy.deepcopy(_data()["evses"][0])
    data.update(uid=uid, last_updated=last_updated, **changes)
    return Evse.model_validate(data)


def connector(connector_id: str, last_updated: datetime = T1) -> Connector:
    data = copy.deepcopy(_data()["evses"][0]["connectors"][0])
    data.update(id=connector_id, last_updated=last_updated)
    return Connector.model_validate(data)


def test_an_evse_is_added_or_replaced_and_the_location_follows_its_last_updated() -> None:
    added = with_evse(location(), evse("EVSE-2"))
    assert [e.uid for e in added.evses] == ["EVSE-0001-1", "EVSE-2"]
    assert added.last_updated == T1
    replaced = with_evse(added, evse("evse-2", status="CHARGING"))  # CiString: same EVSE
    assert [e.status.value for e in replaced.evses] == ["AVAILABLE", "CHARGING"]


def test_an_older_child_does_not_move_the_location_back() -> None:
    newer = with_evse(location(), evse("EVSE-2", T1))
    assert with_evse(newer, evse("EVSE-3", T0)).last_updated == T1


def test_a_connector_sets_both_parents_and_needs_its_evse() -> None:
    updated = with_connector(location(), "EVSE-0001-1", connector("2"))
    held = evse_of(updated, "EVSE-0001-1")
    assert held is not None and [c.id for c in held.connectors] == ["1", "2"]
    assert held.last_updated == T1 and updated.last_updated == T1
    assert held.model_extra == {"vendor_slot": 7}
    assert connector_of(held, "2") is not None and connector_of(held, "3") is None
    with pytest.raises(KeyError):
        with_connector(location(), "NO-SUCH-EVSE", connector("1"))


def test_a_patch_changes_only_what_it_sends_and_is_validated_whole() -> None:
    current = location().evses[0]
    changed = patched(current, {"status": "REMOVED", "last_updated": "2026-02-01T00:00:00Z"})
    assert changed.status.value == "REMOVED" and changed.last_updated == T1
    assert changed.connectors == current.connectors and changed.model_extra == {"vendor_slot": 7}
    with pytest.raises(SchemaInvalid) as refused:
        patched(current, {"status": "BROKEN", "connectors": []})
    paths = {v.path for v in refused.value.violations}
    assert paths == {"status", "connectors"}
