"""Broken submissions: CDRs that violate OCPI 2.2.1, and values that are not JSON at all.

`break_schema` turns a valid wire CDR into one `parse_cdr` must refuse, in one of several
ways (`SCHEMA_FAULTS`), the kind a partner's buggy exporter produces: a negative charging
time, a missing required field, an enum value from another standard, the end before the
start, a timestamp without an offset, too many decimals, a malformed party id, no periods, an
over-long id, a lower-case currency. The envelope around it stays valid, so the hub can
name the CDR's violations in the rejection.

`malformed_value` turns envelope bytes into bytes that are not JSON: cut short (a dropped
connection), a CSV line, or a Python dict repr (single quotes).

    break_schema(cdr, rng) -> ({..., "auth_method": "PIN_CODE", ...}, "bad_enum")
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

Wire = dict[str, Any]


def _negative_time(cdr: Wire, rng: random.Random) -> None:
    first, *rest = cdr["charging_periods"]
    *others, last = first["dimensions"]  # TIME or PARKING_TIME
    negative = {**last, "volume": Decimal(0) - last["volume"] - Decimal("0.0025")}
    cdr["charging_periods"] = [{**first, "dimensions": [*others, negative]}, *rest]


def _missing_field(cdr: Wire, rng: random.Random) -> None:
    del cdr[rng.choice(("cdr_token", "auth_method", "currency", "last_updated", "total_cost"))]


def _bad_enum(cdr: Wire, rng: random.Random) -> None:
    if rng.randrange(2):
        cdr["auth_method"] = "PIN_CODE"  # not an OCPI AuthMethod
    else:
        cdr["cdr_token"] = {**cdr["cdr_token"], "type": "NFC_CARD"}  # not a TokenType


def _end_before_start(cdr: Wire, rng: random.Random) -> None:
    cdr["start_date_time"], cdr["end_date_time"] = cdr["end_date_time"], cdr["start_date_time"]


def _local_timestamp(cdr: Wire, rng: random.Random) -> None:
    cdr["end_date_time"] = cdr["end_date_time"].removesuffix("Z")  # no offset


_TINY: Final = Decimal("0.00001")  # a fifth decimal: OCPI amounts have at most 4


def _too_many_decimals(cdr: Wire, rng: random.Random) -> None:
    cdr["total_cost"] = {**cdr["total_cost"], "excl_vat": cdr["total_cost"]["excl_vat"] + _TINY}


def _bad_party_id(cdr: Wire, rng: random.Random) -> None:
    cdr["cdr_token"] = {**cdr["cdr_token"], "party_id": cdr["cdr_token"]["party_id"] + "X"}


def _no_periods(cdr: Wire, rng: random.Random) -> None:
    cdr["charging_periods"] = []


def _long_id(cdr: Wire, rng: random.Random) -> None:
    cdr["id"] = (cdr["id"] + "-" + "0123456789" * 4)[:40]


def _lower_case_currency(cdr: Wire, rng: random.Random) -> None:
    cdr["currency"] = cdr["currency"].lower()


SCHEMA_FAULTS: Final[dict[str, Callable[[Wire, random.Random], None]]] = {
    "negative_time": _negative_time,
    "missing_field": _missing_field,
    "bad_enum": _bad_enum,
    "end_before_start": _end_before_start,
    "local_timestamp": _local_timestamp,
    "too_many_decimals": _too_many_decimals,
    "bad_party_id": _bad_party_id,
    "no_periods": _no_periods,
    "long_id": _long_id,
    "lower_case_currency": _lower_case_currency,
}


def break_schema(cdr: Wire, rng: random.Random) -> tuple[Wire, str]:
    """A copy of `cdr` with one schema violation, and the name of the fault. Each fault
    replaces what it changes (the wire form shares pre-encoded parts, never mutated)."""
    kind = rng.choice(tuple(SCHEMA_FAULTS))
    broken = dict(cdr)
    SCHEMA_FAULTS[kind](broken, rng)
    return broken, kind


MALFORMED_KINDS: Final = ("truncated", "truncated", "truncated", "csv", "python_repr")


def malformed_value(value: bytes, cdr: Wire, rng: random.Random) -> tuple[bytes, str]:
    """Bytes that are not JSON, derived from a well-formed envelope `value`, and the kind."""
    kind = rng.choice(MALFORMED_KINDS)
    if kind == "truncated":
        # A strict prefix of a JSON object never closes it, so it is never valid JSON.
        return value[: rng.randrange(1, len(value))], kind
    if kind == "csv":
        line = ";".join(
            str(cdr[f]) for f in ("country_code", "party_id", "id", "start_date_time", "currency")
        )
        return line.encode(), kind
    return repr({"type": "cdr.submitted", "cdr_id": cdr["id"]}).encode(), kind
