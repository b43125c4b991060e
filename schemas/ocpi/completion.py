"""Completing partial CDRs and tariffs of test corpora so that the strict models accept them.

Public rating fixtures (../shared/ocpi-cases: the tandemdrive and ocpi-tariffs-py cases)
carry what a price depends on (times, periods, dimensions, totals) but often not who and
where (`id`, `cdr_token`, `cdr_location`, `country_code`, `last_updated`, ...). The strict
models rightly reject them. This module fills only the missing keys, with visible
placeholders (`#NA`, OCPI's "not available"), and reports every path it filled, so a test
can show that no rating input was invented.

Never apply this to partner submissions: the hub rejects an incomplete CDR.

Derived, not invented: a missing `start_date_time` is the earliest period start; a missing
end is the start plus `total_time` hours; a missing `last_updated` is the end. A 2.1.1 CDR
that spells its end `end_date_time` (as some fixtures do) gets it renamed `stop_date_time`.
A missing CDR `id` is a content hash, so it is stable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from schemas.hub.party import PartyRef
from schemas.ocpi.types import format_datetime
from schemas.ocpi.v211 import detect_cdr_version, detect_tariff_version
from schemas.wire import encode_json

NOT_AVAILABLE: Final = "#NA"
_SECONDS_PER_HOUR: Final = Decimal(3600)

_CDR_LOCATION_PLACEHOLDER: Final[dict[str, Any]] = {
    "id": NOT_AVAILABLE,
    "address": NOT_AVAILABLE,
    "city": NOT_AVAILABLE,
    "country": NOT_AVAILABLE,
    "coordinates": {"latitude": "0.000000", "longitude": "0.000000"},
    "evse_uid": NOT_AVAILABLE,
    "evse_id": NOT_AVAILABLE,
    "connector_id": NOT_AVAILABLE,
    # The spec lets a receiver ignore these for reservation-only CDRs; any valid value will do.
    "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET",
    "connector_power_type": "AC_3_PHASE",
}


@dataclass(frozen=True, slots=True)
class Completed:
    """A completed object (plain JSON data) and the paths that were filled or renamed."""

    data: dict[str, Any]
    filled: tuple[str, ...]


def _fill(data: dict[str, Any], key: str, value: Any, filled: list[str], prefix: str = "") -> None:
    if key not in data and value is not None:
        data[key] = value
        filled.append(prefix + key)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _derived_times(data: dict[str, Any], end_key: str, filled: list[str]) -> None:
    periods = data.get("charging_periods")
    starts = [
        parsed
        for period in (periods if isinstance(periods, list) else [])
        if isinstance(period, Mapping)
        and (parsed := _parse_time(period.get("start_date_time"))) is not None
    ]
    if starts:
        _fill(data, "start_date_time", format_datetime(min(starts)), filled)
    start = _parse_time(data.get("start_date_time"))
    hours = data.get("total_time")
    if start is not None and isinstance(hours, int | Decimal) and not isinstance(hours, bool):
        seconds = Decimal(hours) * _SECONDS_PER_HOUR
        _fill(data, end_key, format_datetime(start + timedelta(seconds=int(seconds))), filled)
    _fill(data, "last_updated", data.get(end_key), filled)


def _content_id(raw: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(encode_json(raw).encode("utf-8")).hexdigest()
    return f"corpus-{digest[:24]}"


def complete_tariff(
    raw: Mapping[str, Any], *, owner: PartyRef, last_updated: datetime, prefix: str = ""
) -> Completed:
    """Fill a tariff's missing identity (`owner`) and `last_updated`, for its own version."""
    data = dict(raw)
    filled: list[str] = []
    if detect_tariff_version(data) == "2.2.1":
        _fill(data, "country_code", owner.country_code, filled, prefix)
        _fill(data, "party_id", owner.party_id, filled, prefix)
    _fill(data, "last_updated", format_datetime(last_updated), filled, prefix)
    return Completed(data, tuple(filled))


def _complete_tariffs(data: dict[str, Any], owner: PartyRef, filled: list[str]) -> None:
    tariffs = data.get("tariffs")
    moment = _parse_time(data.get("last_updated"))
    if not isinstance(tariffs, list) or moment is None:
        return
    completed = []
    for index, tariff in enumerate(tariffs):
        if not isinstance(tariff, Mapping):
            completed.append(tariff)
            continue
        done = complete_tariff(
            tariff, owner=owner, last_updated=moment, prefix=f"tariffs[{index}]."
        )
        completed.append(done.data)
        filled.extend(done.filled)
    data["tariffs"] = completed


def complete_cdr(raw: Mapping[str, Any], *, owner: PartyRef) -> Completed:
    """Fill a CDR's missing identity fields with placeholders, for its own OCPI version."""
    data = dict(raw)
    filled: list[str] = []
    if detect_cdr_version(data) == "2.1.1":
        _complete_v211(data, filled)
    else:
        _complete_v221(data, owner, filled)
    _complete_tariffs(data, owner, filled)
    if "id" not in data:
        data["id"] = _content_id(raw)
        filled.append("id")
    return Completed(data, tuple(filled))


def _complete_v221(data: dict[str, Any], owner: PartyRef, filled: list[str]) -> None:
    _fill(data, "country_code", owner.country_code, filled)
    _fill(data, "party_id", owner.party_id, filled)
    _derived_times(data, "end_date_time", filled)
    token = {
        "country_code": owner.country_code,
        "party_id": owner.party_id,
        "uid": NOT_AVAILABLE,
        "type": "OTHER",
        "contract_id": NOT_AVAILABLE,
    }
    _fill(data, "cdr_token", token, filled)
    _fill(data, "auth_method", "WHITELIST", filled)
    location = data.get("cdr_location")
    location = dict(location) if isinstance(location, Mapping) else {}
    if "cdr_location" not in data:
        filled.append("cdr_location")
    for key, value in _CDR_LOCATION_PLACEHOLDER.items():
        prefix = "cdr_location." if "cdr_location" in data else ""
        _fill(location, key, value, filled if prefix else [], prefix)
    data["cdr_location"] = location


def _complete_v211(data: dict[str, Any], filled: list[str]) -> None:
    if "stop_date_time" not in data and "end_date_time" in data:
        data["stop_date_time"] = data.pop("end_date_time")
        filled.append("stop_date_time (renamed from end_date_time)")
    _derived_times(data, "stop_date_time", filled)
    _fill(data, "auth_id", NOT_AVAILABLE, filled)
    _fill(data, "auth_method", "WHITELIST", filled)
    moment = data.get("last_updated")
    connector = {
        "id": NOT_AVAILABLE,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "voltage": 230,
        "amperage": 32,
        "last_updated": moment,
    }
    location = {
        "id": NOT_AVAILABLE,
        "type": "UNKNOWN",
        "address": NOT_AVAILABLE,
        "city": NOT_AVAILABLE,
        "postal_code": NOT_AVAILABLE,
        "country": NOT_AVAILABLE,
        "coordinates": {"latitude": "0.000000", "longitude": "0.000000"},
        "evses": [
            {
                "uid": NOT_AVAILABLE,
                "status": "UNKNOWN",
                "connectors": [connector],
                "last_updated": moment,
            }
        ],
        "last_updated": moment,
    }
    _fill(data, "location", location, filled)
