"""The CPOs' tariffs: OCPI 2.2.1 tariffs with time-of-day prices, parking and start fees.

Each CPO publishes one or two AC tariffs and usually a DC tariff (plus, for the French CPO,
one for its Réunion site with Réunion's VAT). Prices exclude VAT; `vat` is the country's
rate. Elements are ordered as OCPI reads them (the first matching element prices a
dimension), for example an AC tariff with a start fee::

    FLAT 0.50                                    start fee, once per session
    ENERGY 0.39/kWh    17:00-21:00               evening peak
    ENERGY 0.27/kWh    22:00-06:00               night, a window across midnight
    ENERGY 0.33/kWh                              otherwise, step 1 Wh
    PARKING_TIME 2.40/h  08:00-20:00, step 300 s parking after charging, daytime only

Every restriction boundary is a whole or half hour, so in the scenario's zones (whole-hour
or half-hour offsets) each boundary falls on the 9-second grid of `sessions`.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from schemas.ocpi.tariff import Tariff

CENT: Final = Decimal("0.01")
HUNDRED: Final = Decimal(100)

AC_STANDARD_ID: Final = "AC-STANDARD"
AC_TIME_ID: Final = "AC-TIME-2026"
DC_FAST_ID: Final = "DC-FAST"
REUNION_AC_ID: Final = "RE-AC-STANDARD"
UNPUBLISHED_TARIFF_ID: Final = "AC-PROMO-LEGACY"  # never published by any CPO


def _price(text: str) -> Decimal:
    return Decimal(text)


def _component(kind: str, price: Decimal, vat: Decimal, step: int) -> dict[str, Any]:
    return {"type": kind, "price": price, "vat": vat, "step_size": step}


def _element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        element["restrictions"] = restrictions
    return element


def _limit(excl_vat: Decimal, vat: Decimal) -> dict[str, Decimal]:
    incl = (excl_vat * (HUNDRED + vat) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
    return {"excl_vat": excl_vat, "incl_vat": incl}


def _ac_standard(rng: random.Random, vat: Decimal) -> tuple[dict[str, Any], str]:
    base = _price(rng.choice(("0.29", "0.31", "0.33", "0.35")))
    peak = base + _price(rng.choice(("0.04", "0.06", "0.08")))
    night = base - _price(rng.choice(("0.03", "0.05")))
    parking = _price(rng.choice(("1.20", "1.80", "2.40", "3.00")))
    elements = [
        _element(_component("ENERGY", peak, vat, 1), start_time="17:00", end_time="21:00"),
        _element(_component("ENERGY", night, vat, 1), start_time="22:00", end_time="06:00"),
        _element(_component("ENERGY", base, vat, 1)),
        _element(
            _component("PARKING_TIME", parking, vat, 300), start_time="08:00", end_time="20:00"
        ),
    ]
    text = f"{base}/kWh ({peak} 17-21h, {night} 22-6h), parking {parking}/h 8-20h"
    if rng.randrange(2):
        fee = _price(rng.choice(("0.25", "0.50", "0.75")))
        elements.insert(0, _element(_component("FLAT", fee, vat, 1)))
        text = f"{fee} start fee, {text}"
    return {"elements": elements}, text


def _ac_time(rng: random.Random, vat: Decimal) -> tuple[dict[str, Any], str]:
    energy = _price(rng.choice(("0.22", "0.25", "0.28")))
    hourly = _price(rng.choice(("0.60", "1.00", "1.20")))
    weekend = energy - _price("0.03")
    parking = _price(rng.choice(("1.00", "1.50")))
    elements = [
        _element(
            _component("ENERGY", weekend, vat, 1),
            _component("TIME", hourly, vat, 60),
            day_of_week=["SATURDAY", "SUNDAY"],
        ),
        _element(_component("ENERGY", energy, vat, 1), _component("TIME", hourly, vat, 60)),
        _element(_component("PARKING_TIME", parking, vat, 300)),
    ]
    text = f"{energy}/kWh ({weekend} weekends) + {hourly}/h charging, parking {parking}/h"
    fields: dict[str, Any] = {"elements": elements, "min_price": _limit(_price("1.00"), vat)}
    return fields, text


def _dc_fast(rng: random.Random, vat: Decimal) -> tuple[dict[str, Any], str]:
    day = _price(rng.choice(("0.59", "0.64", "0.69", "0.74")))
    off_peak = day - _price(rng.choice(("0.05", "0.10")))
    idle = _price(rng.choice(("6.00", "9.00", "12.00")))  # per hour, billed per minute
    elements = [
        _element(_component("ENERGY", day, vat, 1), start_time="07:00", end_time="20:00"),
        _element(_component("ENERGY", off_peak, vat, 1)),
        _element(_component("PARKING_TIME", idle, vat, 60)),
    ]
    fields: dict[str, Any] = {"elements": elements}
    if rng.randrange(2):
        fields["max_price"] = _limit(_price(rng.choice(("45.00", "60.00", "75.00"))), vat)
    return fields, f"{day}/kWh 7-20h, {off_peak}/kWh otherwise, idle fee {idle}/h"


def _tariff(
    party: tuple[str, str], tariff_id: str, currency: str, last_updated: datetime,
    fields: dict[str, Any], text: str,
) -> Tariff:  # fmt: skip
    data: dict[str, Any] = {
        "country_code": party[0],
        "party_id": party[1],
        "id": tariff_id,
        "currency": currency,
        "type": "REGULAR",
        "tariff_alt_text": [{"language": "en", "text": f"{text} (excl. VAT, {currency})"}],
        **fields,
        "last_updated": last_updated,
    }
    return Tariff.model_validate(data)


def build_tariffs(
    party: tuple[str, str],
    vat: Decimal,
    currency: str,
    last_updated: datetime,
    rng: random.Random,
    reunion_vat: Decimal | None = None,
) -> tuple[Tariff, ...]:
    """A CPO's published tariffs: AC first, then DC (if any), then a Réunion AC tariff."""
    if rng.randrange(3):
        tariffs = [_tariff(party, AC_STANDARD_ID, currency, last_updated, *_ac_standard(rng, vat))]
    else:
        tariffs = [_tariff(party, AC_TIME_ID, currency, last_updated, *_ac_time(rng, vat))]
    if rng.randrange(5):  # most CPOs also run fast chargers
        tariffs.append(_tariff(party, DC_FAST_ID, currency, last_updated, *_dc_fast(rng, vat)))
    if reunion_vat is not None:
        fields, text = _ac_standard(rng, reunion_vat)
        tariffs.append(_tariff(party, REUNION_AC_ID, currency, last_updated, fields, text))
    return tuple(tariffs)


def _seconds(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def boundaries(tariff: Tariff) -> tuple[int, ...]:
    """Local seconds of day where the tariff's applicable elements may change: a session
    starts a new charging period there (mod_cdrs ChargingPeriod). 0 for weekday rules.

    Only time-of-day and weekday restrictions are used by the scenario's tariffs, so a price
    depends on nothing else (`sessions.pricing_signature` relies on it)."""
    seconds: set[int] = set()
    for element in tariff.elements:
        restrictions = element.restrictions
        if restrictions is None:
            continue
        unused = restrictions.model_dump(
            exclude={"start_time", "end_time", "day_of_week"}, exclude_defaults=True
        )
        assert not unused, f"pricing_signature cannot see restrictions {unused}"
        for text in (restrictions.start_time, restrictions.end_time):
            if text is not None:
                seconds.add(_seconds(text))
        if restrictions.day_of_week:
            seconds.add(0)
    return tuple(sorted(seconds))


def uses_weekdays(tariff: Tariff) -> bool:
    """Whether an element of the tariff is restricted to some days of the week."""
    return any(e.restrictions is not None and e.restrictions.day_of_week for e in tariff.elements)
