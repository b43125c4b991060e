"""Which IANA time zone a CDR's local-time restrictions are evaluated in.

OCPI 2.2.1's CdrLocation has no ``time_zone`` (the Location object has), so the zone comes
from, in order:

1. an explicit zone (``rate_cdr(..., time_zone="Europe/Berlin")``, CLI ``--timezone``);
2. a location registry: ``zone_lookup``, either a mapping from ``cdr_location.id`` to a zone
   name or a callable taking the CDR and returning a zone name or None;
3. the country rule: ``cdr_location.country`` (ISO 3166-1 alpha-3) mapped to alpha-2, and
   that country's zones in the tz database's ``zone.tab`` as shipped by the ``tzdata``
   package; used only when the country has exactly one zone (NLD -> Europe/Amsterdam,
   BEL -> Europe/Brussels). DEU has two (Europe/Berlin, Europe/Busingen), USA 29: no zone.

No zone and a tariff that needs local time is ``MissingTimeZone``; roamclear never guesses.

    >>> zone_for_country("NLD")
    'Europe/Amsterdam'
    >>> zone_for_country("DEU") is None
    True
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from settlement.rating.errors import MissingTimeZone

ZoneLookup = Mapping[str, str] | Callable[[Any], str | None]


class ZoneSource(enum.StrEnum):
    """Where the zone used for rating came from."""

    EXPLICIT = "explicit"  # the caller passed it
    REGISTRY = "registry"  # the location registry (zone_lookup)
    COUNTRY = "country"  # the only zone of cdr_location.country in zone.tab


@dataclass(frozen=True, slots=True)
class ResolvedZone:
    """The zone and where it came from."""

    zone: ZoneInfo
    source: ZoneSource


ZONE_TAB_LINES_MAX: Final = 10_000


@functools.cache
def _zones_by_alpha2() -> dict[str, tuple[str, ...]]:
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines()[:ZONE_TAB_LINES_MAX]:
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        zones.setdefault(fields[0], []).append(fields[2])
    return {country: tuple(names) for country, names in zones.items()}


@functools.cache
def _alpha2(alpha3_or_2: str) -> str | None:
    code = alpha3_or_2.strip().upper()
    if len(code) == 2:
        return code
    # babel (a py-moneyed dependency) ships CLDR's alpha-3 -> alpha-2 territory aliases.
    from babel.core import get_global

    aliases = get_global("territory_aliases").get(code)
    if not aliases or len(aliases) != 1 or len(aliases[0]) != 2:
        return None
    return str(aliases[0])


def zone_for_country(country: str | None) -> str | None:
    """The one IANA zone of a country (alpha-3 or alpha-2), or None when it has 0 or >1."""
    if not country:
        return None
    alpha2 = _alpha2(country)
    if alpha2 is None:
        return None
    zones = _zones_by_alpha2().get(alpha2, ())
    return zones[0] if len(zones) == 1 else None


@functools.cache
def load_zone(name: str) -> ZoneInfo:
    """A ZoneInfo by IANA name; an unknown name is MissingTimeZone (it cannot be used)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise MissingTimeZone(f"unknown IANA time zone {name!r}") from error


def _registry_zone(cdr: Any, zone_lookup: ZoneLookup | None) -> str | None:
    if zone_lookup is None:
        return None
    if isinstance(zone_lookup, Mapping):
        location = getattr(cdr, "cdr_location", None)
        location_id = getattr(location, "id", None)
        return None if location_id is None else zone_lookup.get(location_id)
    return zone_lookup(cdr)


def resolve_zone(
    cdr: Any, time_zone: str | ZoneInfo | None, zone_lookup: ZoneLookup | None
) -> ResolvedZone | None:
    """The zone for ``cdr`` by the rules above, or None when none applies."""
    if isinstance(time_zone, ZoneInfo):
        return ResolvedZone(time_zone, ZoneSource.EXPLICIT)
    if time_zone:
        return ResolvedZone(load_zone(time_zone), ZoneSource.EXPLICIT)
    registered = _registry_zone(cdr, zone_lookup)
    if registered:
        return ResolvedZone(load_zone(registered), ZoneSource.REGISTRY)
    location = getattr(cdr, "cdr_location", None)
    by_country = zone_for_country(getattr(location, "country", None))
    if by_country:
        return ResolvedZone(load_zone(by_country), ZoneSource.COUNTRY)
    return None
