"""CDRs and cdr.submitted envelopes in wire form, priced by the hub's own engine.

A CDR is built as plain data in the exact order and form `schemas.wire.to_ocpi_json` writes
(so `to_ocpi_json(parse_envelope(value)) == value` for every well-formed record) and encoded
with orjson, whose output equals `schemas.wire.encode_json` for such data (Decimals are
written as their digits through `orjson.Fragment`) at a twentieth of the cost.

Declared totals are `rate_cdr(cdr, site tariff, time_zone=site zone).totals`, so the hub's
rating reproduces them exactly; the volumes it rates are the Decimal objects the wire form
carries. Rating costs more than everything else here, so `generator` rates each distinct
pricing signature once (`sessions.pricing_signature`).

    {"event_id": "…", "type": "cdr.submitted", "version": 1, "occurred_at": "…Z",
     "submitter": {"country_code": "NL", "party_id": "TLP"}, "cdr": {…}}
"""

from __future__ import annotations

import functools
import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from pipeline.simulate.locations import Site
from pipeline.simulate.sessions import PeriodShape, SessionShape
from schemas.ocpi.cdr import Cdr, CdrDimension, CdrToken, ChargingPeriod
from schemas.ocpi.enums import AuthMethod, CdrDimensionType, TokenType
from schemas.ocpi.types import Price
from settlement.rating import Cost, CostTotals, rate_cdr
from settlement.rating.results import TOTAL_FIELDS

ZERO: Final = Decimal(0)
DAYS_CACHED_MAX: Final = 4096


def _fragment(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f").encode())
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(data: object) -> bytes:
    """Compact UTF-8 JSON, Decimals as exact numbers (the same bytes as `encode_json`)."""
    return orjson.dumps(data, default=_fragment)


@functools.lru_cache(maxsize=DAYS_CACHED_MAX)
def _date_text(day: int) -> str:
    return clock.strftime("%Y-%m-%dT", clock.gmtime(day * 86_400))


def timestamp(epoch_s: int) -> str:
    """RFC 3339 UTC with `Z`, whole seconds (as `format_datetime` writes them)."""
    day, second = divmod(epoch_s, 86_400)
    hour, rest = divmod(second, 3600)
    minute, second = divmod(rest, 60)
    return f"{_date_text(day)}{hour:02d}:{minute:02d}:{second:02d}Z"


def event_id(bits: int) -> str:
    """A version 4 UUID from 128 random bits, as `str(uuid.UUID(int=bits, version=4))`."""
    bits = (bits & ~(0xF000 << 64) | 0x4000 << 64) & ~(0xC000 << 48) | 0x8000 << 48
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who charged and under which ids: what a CDR and its re-sends or credits share."""

    country_code: str
    party_id: str
    cdr_id: str
    session_id: str
    token: tuple[str, str, str, str, str]  # country_code, party_id, uid, type, contract_id
    auth_method: str
    authorization_reference: str | None

    @property
    def key(self) -> str:
        """The canonical CDR key `CC*PID*ID` (upper case, as `CdrKey` writes it)."""
        return f"{self.country_code}*{self.party_id}*{self.cdr_id}".upper()


def _dimensions(period: PeriodShape) -> list[dict[str, Any]]:
    if period.energy_wh is None:
        return [{"type": "PARKING_TIME", "volume": period.hours}]
    return [
        {"type": "ENERGY", "volume": period.energy_kwh},
        {"type": "TIME", "volume": period.hours},
    ]


def wire_periods(shape: SessionShape, tariff_id: str) -> list[dict[str, Any]]:
    """The charging periods in wire form."""
    return [
        {
            "start_date_time": timestamp(p.start_s),
            "dimensions": _dimensions(p),
            "tariff_id": tariff_id,
        }
        for p in shape.periods
    ]


_DIMENSION_TYPES: Final = {kind.value: kind for kind in CdrDimensionType}


def rate_periods(site: Site, shape: SessionShape, periods: list[dict[str, Any]]) -> CostTotals:
    """The hub's totals for the session (rounded to 4 decimals, as a CDR declares them).

    The CDR is assembled with `model_construct` (no validation: its parts are valid by
    construction, and the tests parse and rate every record to prove the totals equal).
    Declared totals and the token do not influence the hub's price, so they are left out.
    """
    constructed = tuple(
        ChargingPeriod.model_construct(
            start_date_time=datetime.fromtimestamp(p.start_s, UTC),
            dimensions=tuple(
                CdrDimension.model_construct(type=_DIMENSION_TYPES[d["type"]], volume=d["volume"])
                for d in wire["dimensions"]
            ),
            tariff_id=wire["tariff_id"],
        )
        for p, wire in zip(shape.periods, periods, strict=True)
    )
    end = datetime.fromtimestamp(shape.end_s, UTC)
    cdr = Cdr.model_construct(
        country_code=site.tariff.country_code,
        party_id=site.tariff.party_id,
        id="SIMULATED",
        start_date_time=datetime.fromtimestamp(shape.start_s, UTC),
        end_date_time=end,
        cdr_token=_ANY_TOKEN,
        auth_method=AuthMethod.WHITELIST,
        cdr_location=site.cdr_location_model,
        currency=site.tariff.currency,
        charging_periods=constructed,
        total_cost=_ZERO_PRICE,
        total_energy=shape.energy_kwh,
        total_time=shape.total_hours,
        last_updated=end,
    )
    return rate_cdr(cdr, site.tariff, time_zone=site.zone).totals


_ZERO_PRICE: Final = Price(excl_vat=Decimal(0), incl_vat=Decimal(0))
_ANY_TOKEN: Final = CdrToken(
    country_code="ZZ", party_id="ZZZ", uid="SIMULATED", type=TokenType.RFID, contract_id="SIM"
)


def _price(price: Cost, negate: bool) -> dict[str, Decimal]:
    if negate:  # ZERO - x, never -0
        return {"excl_vat": ZERO - price.excl_vat, "incl_vat": ZERO - price.incl_vat}
    return {"excl_vat": price.excl_vat, "incl_vat": price.incl_vat}


def declared_costs(totals: CostTotals, negate: bool = False) -> dict[str, dict[str, Decimal]]:
    """The CDR's cost fields from the hub's totals (None totals are left out)."""
    costs = {}
    for field in TOTAL_FIELDS:
        price = totals.get(field)
        if price is not None:
            costs[field] = _price(price, negate)
    return costs


def shifted(cost: dict[str, Decimal], delta: Decimal) -> dict[str, Decimal]:
    """A declared total off by `delta` on both sides (a CPO's own rounding or error)."""
    return {"excl_vat": cost["excl_vat"] + delta, "incl_vat": cost["incl_vat"] + delta}


def cdr_wire(
    identity: Identity,
    site: Site,
    shape: SessionShape,
    periods: list[dict[str, Any]],
    costs: dict[str, dict[str, Decimal]],
    last_updated_s: int,
    embed_tariff: bool,
    credit_reference_id: str | None = None,
) -> dict[str, Any]:
    """A CDR in wire form (field order of the `Cdr` model, as `to_ocpi_json` writes it)."""
    token = identity.token
    cdr: dict[str, Any] = {
        "country_code": identity.country_code,
        "party_id": identity.party_id,
        "id": identity.cdr_id if credit_reference_id is None else f"{identity.cdr_id}-CR",
        "start_date_time": timestamp(shape.start_s),
        "end_date_time": timestamp(shape.end_s),
        "session_id": identity.session_id,
        "cdr_token": {
            "country_code": token[0],
            "party_id": token[1],
            "uid": token[2],
            "type": token[3],
            "contract_id": token[4],
        },
        "auth_method": identity.auth_method,
    }
    if identity.authorization_reference is not None:
        cdr["authorization_reference"] = identity.authorization_reference
    cdr["cdr_location"] = site.cdr_location
    cdr["currency"] = site.tariff.currency
    cdr["tariffs"] = [site.tariff_wire] if embed_tariff else []
    cdr["charging_periods"] = periods
    cdr["total_cost"] = costs["total_cost"]
    _put(cdr, costs, "total_fixed_cost")
    cdr["total_energy"] = shape.energy_kwh
    _put(cdr, costs, "total_energy_cost")
    cdr["total_time"] = shape.total_hours
    _put(cdr, costs, "total_time_cost")
    cdr["total_parking_time"] = shape.parking_hours
    _put(cdr, costs, "total_parking_cost")
    _put(cdr, costs, "total_reservation_cost")
    if credit_reference_id is not None:
        cdr["credit"] = True
        cdr["credit_reference_id"] = credit_reference_id
    cdr["last_updated"] = timestamp(last_updated_s)
    return cdr


def _put(cdr: dict[str, Any], costs: dict[str, dict[str, Decimal]], field: str) -> None:
    if field in costs:
        cdr[field] = costs[field]


def envelope(event_id: str, occurred_s: int, submitter: tuple[str, str], cdr_json: bytes) -> bytes:
    """The cdr.submitted envelope around already encoded CDR bytes (DESIGN.md field order)."""
    head = (
        f'{{"event_id":"{event_id}","type":"cdr.submitted","version":1,'
        f'"occurred_at":"{timestamp(occurred_s)}",'
        f'"submitter":{{"country_code":"{submitter[0]}","party_id":"{submitter[1]}"}},"cdr":'
    )
    return head.encode() + cdr_json + b"}"
