"""A CDR fragment completed for pricing (`roamclear rate --lenient`): a partner mails ops a
CDR without its identity or location details, and rating needs neither (a price depends on
the charging periods, the times, the currency and the tariff, never on who charged or at
which connector). Every absent field of the OCPI 2.2.1 CDR that pricing does not read is
filled with a placeholder that cannot pass for a real value, and the filled paths are listed,
so the output says what was made up. Money, volumes, times and the periods are never filled:
without them there is nothing to price, and the OCPI schema says which is missing.

    >>> done = complete_for_pricing({"cdr_location": {"id": "LOC1"}, "currency": "EUR"})
    >>> done.filled[:3]
    ('country_code', 'party_id', 'id')
    >>> done.cdr["cdr_location"]["id"], done.cdr["cdr_location"]["country"]
    ('LOC1', 'ZZZ')

A placeholder country (ZZZ, no ISO 3166 country) names no time zone, so a tariff with
local-time restrictions still asks for `--timezone` instead of guessing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

PLACEHOLDER: Final = "UNKNOWN"
"""The text of a filled identifier: no real CDR, token, location or EVSE has it."""

_IDENTITY: Final[Mapping[str, Any]] = {
    "country_code": "ZZ",  # a user-assigned ISO 3166 code: never a real operator's
    "party_id": "ZZZ",
    "id": PLACEHOLDER,
    "auth_method": "WHITELIST",
}
_TOKEN: Final[Mapping[str, Any]] = {
    "country_code": "ZZ",
    "party_id": "ZZZ",
    "uid": PLACEHOLDER,
    "type": "OTHER",
    "contract_id": PLACEHOLDER,
}
_LOCATION: Final[Mapping[str, Any]] = {
    "id": PLACEHOLDER,
    "address": PLACEHOLDER,
    "city": PLACEHOLDER,
    "country": "ZZZ",  # names no time zone (settlement.rating.timezones)
    "coordinates": {"latitude": "0.000000", "longitude": "0.000000"},
    "evse_uid": PLACEHOLDER,
    "evse_id": PLACEHOLDER,
    "connector_id": PLACEHOLDER,
    "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET",
    "connector_power_type": "AC_3_PHASE",
}
NEVER_FILLED: Final = (
    "start_date_time",
    "end_date_time",
    "currency",
    "charging_periods",
    "total_cost",
    "total_energy",
    "total_time",
)
"""What pricing reads or compares: a fragment without one of them is refused by the schema."""


@dataclass(frozen=True, slots=True)
class Completed:
    """The fragment with the fields pricing does not need filled, and which ones were."""

    cdr: dict[str, Any]
    filled: tuple[str, ...]  # dotted paths, in the order of the OCPI CDR object


def _absent(data: Mapping[str, Any], field: str) -> bool:
    return data.get(field) is None


def _fill(
    data: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str
) -> tuple[dict[str, Any], list[str]]:
    done, filled = dict(data), []
    for field, value in defaults.items():
        if _absent(data, field):
            done[field] = value
            filled.append(prefix + field)
    return done, filled


def complete_for_pricing(fragment: Mapping[str, Any]) -> Completed:
    """`fragment` (a decoded OCPI 2.2.1 CDR, any part missing) with every absent field
    pricing does not read filled; present fields are kept as they are, even when invalid
    (the schema then says what is wrong with them)."""
    cdr, filled = _fill(fragment, _IDENTITY, "")
    for field, defaults in (("cdr_token", _TOKEN), ("cdr_location", _LOCATION)):
        part = cdr.get(field)
        if part is None:
            cdr[field], more = dict(defaults), [field]
        elif isinstance(part, Mapping):
            cdr[field], more = _fill(part, defaults, f"{field}.")
        else:
            continue  # not an object: left for the schema to refuse
        filled += more
    if _absent(cdr, "last_updated") and not _absent(cdr, "end_date_time"):
        cdr["last_updated"] = cdr["end_date_time"]  # when the session ended: the CDR's time
        filled.append("last_updated")
    return Completed(cdr, tuple(filled))
