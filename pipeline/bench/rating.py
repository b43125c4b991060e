"""Rating throughput: CDRs priced per second on one core.

Two fixed workloads, each priced in a loop; the figure is the median of several runs:

- typical: 3 periods (ENERGY + TIME, ENERGY + TIME, PARKING_TIME), a tariff with a start fee,
  a day-time element (08:00-20:00 local) and a fallback, parking billed per 5 min;
- complex: 6 periods, 5 elements (time of day, day of week, max_power, min_duration), step
  sizes on energy, time and parking, min_price and max_price.

"pricing only" rates already parsed models (the tariff compiled and cached as in the worker);
"parse and price" also decodes the CDR each time, as the clearing worker does: a cdr.submitted
record read by ``settlement.clearing.decode.decode`` (its msgspec fast path for a plain valid
record, the pydantic models for any other), tariff cached. The records are written as OCPI
writes them: numbers as JSON numbers, at most 4 decimals (OCPI 2.2.1 types, "number"), as
the simulated partners send them; ``_workload`` checks that the worker's decoder takes the
fast path and builds the very Cdr ``parse_cdr`` builds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgspec

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff
from schemas.validation import parse_cdr, parse_tariff
from settlement.clearing.decode import Decoded, decode
from settlement.clearing.fast_decode import decode_fast
from settlement.rating import rate_cdr

RUNS: Final = 5
ITERATIONS_PER_RUN: Final = 2_000
ZONE: Final = "Europe/Amsterdam"


def _tariff(elements: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "country_code": "NL",
        "party_id": "TNM",
        "id": fields.pop("id"),
        "currency": "EUR",
        "elements": elements,
        "last_updated": "2024-01-01T00:00:00Z",
        **fields,
    }


def _pc(kind: str, price: str, step: int = 1, vat: str = "21") -> dict[str, Any]:
    return {"type": kind, "price": price, "vat": vat, "step_size": step}


TYPICAL_TARIFF: Final = _tariff(
    [
        {"price_components": [_pc("FLAT", "0.35")]},
        {
            "price_components": [_pc("ENERGY", "0.39"), _pc("TIME", "0.60", 60)],
            "restrictions": {"start_time": "08:00", "end_time": "20:00"},
        },
        {"price_components": [_pc("ENERGY", "0.29"), _pc("TIME", "0.30", 60)]},
        {"price_components": [_pc("PARKING_TIME", "2.00", 300)]},
    ],
    id="TYPICAL",
)

COMPLEX_TARIFF: Final = _tariff(
    [
        {
            "price_components": [_pc("FLAT", "1.00"), _pc("ENERGY", "0.45", 100)],
            "restrictions": {"max_power": "22"},
        },
        {
            "price_components": [_pc("ENERGY", "0.59", 500), _pc("TIME", "1.20", 900)],
            "restrictions": {
                "start_time": "17:00",
                "end_time": "21:00",
                "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
            },
        },
        {"price_components": [_pc("TIME", "0.80", 600)], "restrictions": {"min_duration": 7200}},
        {
            "price_components": [_pc("PARKING_TIME", "3.00", 300)],
            "restrictions": {"start_time": "09:00", "end_time": "00:00"},
        },
        {"price_components": [_pc("ENERGY", "0.49", 1000), _pc("TIME", "0.40", 300)]},
    ],
    id="COMPLEX",
    min_price={"excl_vat": "2.00", "incl_vat": "2.42"},
    max_price={"excl_vat": "60.00", "incl_vat": "72.60"},
)


def _cdr(
    cdr_id: str, start: str, end: str, periods: list[tuple[str, dict[str, str]]]
) -> dict[str, Any]:
    """A CDR document; its numbers are Decimals, written as JSON numbers by ``_record``."""
    return {
        "country_code": "NL",
        "party_id": "TNM",
        "id": cdr_id,
        "start_date_time": start,
        "end_date_time": end,
        "cdr_token": {
            "country_code": "NL",
            "party_id": "EMS",
            "uid": "0123",
            "type": "RFID",
            "contract_id": "NL-EMS-C12345678-X",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC1",
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "country": "NLD",
            "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},  # OCPI: text
            "evse_uid": "E1",
            "evse_id": "NL*TNM*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": s,
                "dimensions": [{"type": k, "volume": Decimal(v)} for k, v in dims.items()],
            }
            for s, dims in periods
        ],
        "total_cost": {"excl_vat": Decimal(0)},
        "total_energy": Decimal(0),
        "total_time": Decimal(0),
        "last_updated": end,
    }


TYPICAL_CDR: Final = _cdr(
    "BENCH-T",
    "2024-03-12T18:10:00Z",
    "2024-03-12T21:05:00Z",
    [
        ("2024-03-12T18:10:00Z", {"ENERGY": "9.870", "TIME": "0.8333", "MAX_POWER": "11"}),
        ("2024-03-12T19:00:00Z", {"ENERGY": "12.130", "TIME": "1.25", "MAX_POWER": "11"}),
        ("2024-03-12T20:15:00Z", {"PARKING_TIME": "0.8333"}),
    ],
)

COMPLEX_CDR: Final = _cdr(
    "BENCH-C",
    "2024-03-12T14:00:00Z",
    "2024-03-12T20:40:00Z",
    [
        (
            "2024-03-12T14:00:00Z",
            {"ENERGY": "20.5", "TIME": "1", "MIN_POWER": "18", "MAX_POWER": "21"},
        ),
        (
            "2024-03-12T15:00:00Z",
            {"ENERGY": "30.25", "TIME": "1", "MIN_POWER": "30", "MAX_POWER": "44"},
        ),
        (
            "2024-03-12T16:00:00Z",
            {"ENERGY": "15.125", "TIME": "1", "MIN_POWER": "14", "MAX_POWER": "16"},
        ),
        (
            "2024-03-12T17:00:00Z",
            {"ENERGY": "4.3", "TIME": "0.75", "MIN_POWER": "5", "MAX_POWER": "7"},
        ),
        ("2024-03-12T17:45:00Z", {"PARKING_TIME": "1.25"}),
        ("2024-03-12T19:00:00Z", {"PARKING_TIME": "1.6667"}),
    ],
)


@dataclass(frozen=True, slots=True)
class RatingBench:
    """CDRs per second, median of ``RUNS`` runs."""

    typical_per_s: float
    complex_per_s: float
    typical_parse_and_price_per_s: float
    complex_parse_and_price_per_s: float


def _per_second(work: Callable[[], object], iterations: int, runs: int) -> float:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(iterations):
            work()
        rates.append(iterations / (time.perf_counter() - started))
    return statistics.median(rates)


_JSON: Final = msgspec.json.Encoder(decimal_format="number")


def _record(cdr_data: dict[str, Any]) -> bytes:
    """The cdr.submitted record a CPO's submission becomes on the topic."""
    return _JSON.encode(
        {
            "event_id": "00000000-0000-4000-8000-000000000001",
            "type": "cdr.submitted",
            "occurred_at": cdr_data["last_updated"],
            "submitter": {"country_code": cdr_data["country_code"], "party_id": "TNM"},
            "cdr": cdr_data,
        }
    )


def _decoded(record: bytes) -> Cdr:
    decoded = decode(record)
    assert isinstance(decoded, Decoded), decoded
    return decoded.cdr


def _workload(
    cdr_data: dict[str, Any], tariff_data: dict[str, Any]
) -> tuple[Callable[[], object], Callable[[], object]]:
    tariff: Tariff = parse_tariff(tariff_data)
    cdr: Cdr = parse_cdr(_JSON.encode(cdr_data))
    record = _record(cdr_data)
    fast = decode_fast(record)
    assert fast is not None and fast[2] == cdr, "the worker's fast decoder must build this Cdr"
    rate_cdr(cdr, tariff, time_zone=ZONE)  # compile and cache the tariff, fail fast

    def price() -> object:
        return rate_cdr(cdr, tariff, time_zone=ZONE)

    def parse_and_price() -> object:
        return rate_cdr(_decoded(record), tariff, time_zone=ZONE)

    return price, parse_and_price


def run(iterations: int = ITERATIONS_PER_RUN, runs: int = RUNS) -> RatingBench:
    """Run both workloads; seconds of wall time on one core."""
    typical, typical_parsed = _workload(TYPICAL_CDR, TYPICAL_TARIFF)
    complex_, complex_parsed = _workload(COMPLEX_CDR, COMPLEX_TARIFF)
    return RatingBench(
        typical_per_s=_per_second(typical, iterations, runs),
        complex_per_s=_per_second(complex_, iterations, runs),
        typical_parse_and_price_per_s=_per_second(typical_parsed, iterations // 4, runs),
        complex_parse_and_price_per_s=_per_second(complex_parsed, iterations // 4, runs),
    )
