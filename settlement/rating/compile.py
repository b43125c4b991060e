"""Compile an OCPI Tariff into the engine's frozen ``CompiledTariff``, once, and cache it.

The cache key is the tariff version (country_code, party_id, id, last_updated) plus the
sha256 of its canonical JSON, so two different contents under one version never share an
entry. The same model object is recognised by identity and skips hashing altogether.

    >>> from schemas.ocpi.tariff import Tariff
    >>> tariff = Tariff.model_validate_json('''{"country_code": "DE", "party_id": "ALL",
    ...   "id": "12", "currency": "EUR", "last_updated": "2015-06-29T20:39:09Z",
    ...   "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25,
    ...                                       "vat": 10.0, "step_size": 1}]}]}''')
    >>> compiled = compile_tariff(tariff)
    >>> compiled.elements[0].energy.price, compiled.needs_local_time
    (Decimal('0.25'), False)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

import orjson

from schemas.ocpi.tariff import PriceComponent, Tariff, TariffElement, TariffRestrictions
from settlement.money import RATING_CONTEXT, WH_PER_KWH, vat_multiplier
from settlement.rating.model import (
    Candidate,
    CompiledComponent,
    CompiledElement,
    CompiledRestrictions,
    CompiledTariff,
    Dimension,
    PriceLimit,
    ReservationKind,
    ReservationMode,
    TariffRef,
)
from settlement.rating.restrictions import compile_predicate

COMPILED_TARIFF_CACHE_MAX: Final = 4096
"""Compiled tariff versions kept in memory (least recently used are dropped)."""

SECONDS_PER_DAY: Final = 86_400
MICROSECONDS_PER_SECOND: Final = 1_000_000

_WEEKDAYS: Final = {
    "MONDAY": 0,
    "TUESDAY": 1,
    "WEDNESDAY": 2,
    "THURSDAY": 3,
    "FRIDAY": 4,
    "SATURDAY": 5,
    "SUNDAY": 6,
}


def _value(member: object) -> str:
    """The OCPI string of a str Enum member (or a plain str)."""
    return str(getattr(member, "value", member))


def tariff_content_hash(tariff: Tariff) -> str:
    """sha256 of the canonical JSON of the tariff: keys sorted, no whitespace, numbers as the
    decimal strings that were sent, nulls dropped (an absent and a null field mean the same)."""
    document = tariff.model_dump(mode="json", exclude_none=True)
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _seconds_of_day(text: str | None, *, end_of_day: bool) -> int | None:
    """ "13:30" -> 48600. As an end_time, "00:00" means the end of the day (mod_tariffs
    11.4.6 TariffRestrictions: "To stop at end of the day use: 00:00")."""
    if text is None:
        return None
    hours, minutes = text.split(":")
    seconds = int(hours) * 3600 + int(minutes) * 60
    if end_of_day and seconds == 0:
        return SECONDS_PER_DAY
    return seconds


def _date(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _microseconds(seconds: int | None) -> int | None:
    return None if seconds is None else int(seconds) * MICROSECONDS_PER_SECOND


def compile_restrictions(restrictions: TariffRestrictions | None) -> CompiledRestrictions | None:
    """Restrictions as comparable numbers; None when the element is unrestricted."""
    if restrictions is None:
        return None
    days = restrictions.day_of_week
    weekdays = frozenset(_WEEKDAYS[_value(day)] for day in days) if days else None
    reservation = restrictions.reservation
    compiled = CompiledRestrictions(
        start_second=_seconds_of_day(restrictions.start_time, end_of_day=False),
        end_second=_seconds_of_day(restrictions.end_time, end_of_day=True),
        start_date=_date(restrictions.start_date),
        end_date=_date(restrictions.end_date),
        min_kwh=restrictions.min_kwh,
        max_kwh=restrictions.max_kwh,
        min_current=restrictions.min_current,
        max_current=restrictions.max_current,
        min_power=restrictions.min_power,
        max_power=restrictions.max_power,
        min_duration_us=_microseconds(restrictions.min_duration),
        max_duration_us=_microseconds(restrictions.max_duration),
        weekdays=weekdays,
        reservation=None if reservation is None else ReservationKind(_value(reservation)),
        needs_local_time=bool(
            restrictions.start_time
            or restrictions.end_time
            or restrictions.start_date
            or restrictions.end_date
            or weekdays
        ),
    )
    return compiled


def _power_of_ten_exponent(step_size_wh: int) -> int | None:
    """k when ``step_size_wh`` Wh is 10**k kWh (1 -> -3, 1000 -> 0), else None."""
    digits = str(step_size_wh)
    if digits[0] != "1" or digits.strip("0") != "1":
        return None
    return len(digits) - 1 - 3


def _component(component: PriceComponent, index: int) -> CompiledComponent:
    step_size = int(component.step_size)
    step_size_s = Decimal(step_size)
    return CompiledComponent(
        dimension=_value(component.type),
        price=component.price,
        vat=component.vat,
        step_size=step_size,
        component_index=index,
        vat_multiplier=vat_multiplier(component.vat),
        step_size_kwh=RATING_CONTEXT.divide(step_size_s, WH_PER_KWH),
        step_size_s=step_size_s,
        step_size_kwh_exponent=_power_of_ten_exponent(step_size),
    )


def compile_element(element: TariffElement, index: int) -> CompiledElement:
    """One element; when it lists a dimension twice, the first component is the one used
    (mod_tariffs: only one Price Component per dimension can be active at a time)."""
    first: dict[str, CompiledComponent] = {}
    for component_index, component in enumerate(element.price_components):
        first.setdefault(_value(component.type), _component(component, component_index))
    restrictions = compile_restrictions(element.restrictions)
    return CompiledElement(
        index=index,
        restrictions=restrictions,
        energy=first.get("ENERGY"),
        time=first.get("TIME"),
        parking=first.get("PARKING_TIME"),
        flat=first.get("FLAT"),
        holds=compile_predicate(restrictions),
    )


def _component_for(element: CompiledElement, dimension: Dimension) -> CompiledComponent | None:
    match dimension:
        case Dimension.ENERGY:
            return element.energy
        case Dimension.TIME | Dimension.RESERVATION_TIME:
            return element.time
        case Dimension.PARKING_TIME:
            return element.parking
        case Dimension.FLAT:
            return element.flat


def _kind(element: CompiledElement) -> ReservationKind | None:
    return None if element.restrictions is None else element.restrictions.reservation


def _candidates(
    elements: tuple[CompiledElement, ...],
) -> dict[ReservationMode, dict[Dimension, tuple[Candidate, ...]]]:
    """Per (dimension, reservation mode), the elements that may price it, in lookup order.

    Outside a reservation only elements without a ``reservation`` restriction apply. A used
    reservation is priced by RESERVATION elements. An expired one by RESERVATION_EXPIRES
    elements first, then RESERVATION ones (mod_tariffs ReservationRestrictionType note: the
    time of an expired reservation is priced by the RESERVATION_EXPIRES element when both
    have TIME).
    """
    table: dict[ReservationMode, dict[Dimension, tuple[Candidate, ...]]] = {
        mode: {} for mode in ReservationMode
    }
    for dimension in Dimension:
        priced: list[Candidate] = []
        for element in elements:
            component = _component_for(element, dimension)
            if component is not None:
                priced.append((element, component))
        plain = tuple(c for c in priced if _kind(c[0]) is None)
        reserved = tuple(c for c in priced if _kind(c[0]) is ReservationKind.RESERVATION)
        expires = tuple(c for c in priced if _kind(c[0]) is ReservationKind.RESERVATION_EXPIRES)
        no_reservation = dimension is Dimension.RESERVATION_TIME
        table[ReservationMode.NONE][dimension] = () if no_reservation else plain
        table[ReservationMode.RESERVED][dimension] = reserved
        table[ReservationMode.EXPIRED][dimension] = expires + reserved
    return table


def _limit(price: Any) -> PriceLimit | None:
    if price is None:
        return None
    return PriceLimit(excl_vat=price.excl_vat, incl_vat=price.incl_vat)


def _build(tariff: Tariff, content_hash: str) -> CompiledTariff:
    elements = tuple(compile_element(e, i) for i, e in enumerate(tariff.elements))
    candidates = _candidates(elements)
    plain = candidates[ReservationMode.NONE]
    return CompiledTariff(
        ref=TariffRef(
            id=tariff.id,
            country_code=getattr(tariff, "country_code", None),
            party_id=getattr(tariff, "party_id", None),
            last_updated=tariff.last_updated,
            content_hash=content_hash,
        ),
        currency=tariff.currency,
        elements=elements,
        candidates=candidates,
        min_price=_limit(tariff.min_price),
        max_price=_limit(tariff.max_price),
        start_date_time=tariff.start_date_time,
        end_date_time=tariff.end_date_time,
        needs_local_time=any(
            e.restrictions is not None and e.restrictions.needs_local_time for e in elements
        ),
        has_energy=bool(plain[Dimension.ENERGY]),
        has_time=bool(plain[Dimension.TIME]),
        has_parking=bool(plain[Dimension.PARKING_TIME]),
        has_fixed=bool(plain[Dimension.FLAT]),
        has_reservation=any(_kind(e) is not None for e in elements),
    )


@dataclass(slots=True)
class _Entry:
    source: Tariff  # the model object last compiled under this key (identity fast path)
    compiled: CompiledTariff


class _CompiledTariffCache:
    """LRU of compiled tariffs keyed by version; thread-safe (workers may share it)."""

    def __init__(self, size_max: int) -> None:
        self._size_max = size_max
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        # The model object compiled last and its compiled form, read and replaced as one
        # value (no lock): a worker prices run after run of CDRs with the same tariff object.
        # Models are frozen, so the same object is the same version; its entry is already
        # the most recently used one, so the LRU order needs no update.
        self._last: tuple[Tariff | None, CompiledTariff | None] = (None, None)

    def get(self, tariff: Tariff) -> CompiledTariff:
        last_source, last_compiled = self._last
        if last_source is tariff and last_compiled is not None:
            return last_compiled
        compiled = self._get(tariff)
        self._last = (tariff, compiled)
        return compiled

    def _get(self, tariff: Tariff) -> CompiledTariff:
        version = (
            getattr(tariff, "country_code", None),
            getattr(tariff, "party_id", None),
            tariff.id,
            tariff.last_updated,
        )
        identity_key = (*version, None)
        with self._lock:
            entry = self._entries.get(identity_key)
            if entry is not None and entry.source is tariff:
                self._entries.move_to_end(identity_key)
                return entry.compiled
        content_hash = tariff_content_hash(tariff)
        key = (*version, content_hash)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry(source=tariff, compiled=_build(tariff, content_hash))
                self._entries[key] = entry
            self._entries.move_to_end(key)
            # The identity slot remembers the model object seen last under this version.
            self._entries[identity_key] = _Entry(source=tariff, compiled=entry.compiled)
            while len(self._entries) > self._size_max:
                self._entries.popitem(last=False)
            return entry.compiled

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._last = (None, None)


_CACHE: Final = _CompiledTariffCache(COMPILED_TARIFF_CACHE_MAX)


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """The compiled form of ``tariff``, from the cache when this version was seen before."""
    return _CACHE.get(tariff)


def clear_compiled_tariff_cache() -> None:
    """Forget every compiled tariff (tests and benchmarks measuring cold compilation)."""
    _CACHE.clear()
