"""A scenario's reference data: partners, tariffs, locations, agreements, and the sites.

Built from the config alone (its own random stream), so the records generated later, in any
amount, refer to exactly this data. Tariffs, locations and agreements are dated
`reference_time` (midnight, 30 days before the session window opens), so every version is
in force for every session.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from pipeline.simulate.agreements import Coverage, build_agreements
from pipeline.simulate.config import ScenarioConfig
from pipeline.simulate.locations import Site, build_locations, build_sites
from pipeline.simulate.partners import REUNION, Partner, build_partners, country_of
from pipeline.simulate.tariffs import build_tariffs
from schemas.hub.agreement import Agreement
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff

REUNION_CPO = ("FR", "CHA")  # the CPO that also runs a site in Réunion


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """What the hub must know before the first CDR arrives."""

    cpos: tuple[Partner, ...]
    emsps: tuple[Partner, ...]
    tariffs: tuple[Tariff, ...]
    locations: tuple[Location, ...]
    agreements: tuple[Agreement, ...]
    sites: tuple[Site, ...]
    coverage: Coverage

    @property
    def partners(self) -> tuple[Partner, ...]:
        return self.cpos + self.emsps


def reference_time(config: ScenarioConfig) -> datetime:
    """When tariffs, locations and agreements were published (before every session)."""
    moment = config.now.astimezone(UTC) - timedelta(days=config.window_days + 30)
    return datetime.combine(moment.date(), time(), tzinfo=UTC)


def build_reference(config: ScenarioConfig) -> ReferenceData:
    """The reference data of `config` (deterministic)."""
    rng = random.Random(f"roamclear-simulate:{config.seed}:reference")
    published = reference_time(config)
    cpos, emsps = build_partners(config.cpos, config.emsps)
    tariffs: list[Tariff] = []
    locations: list[Location] = []
    sites: list[Site] = []
    for index, cpo in enumerate(cpos):
        party = (cpo.party.country_code, cpo.party.party_id)
        reunion_vat = REUNION.vat_percent if party == REUNION_CPO else None
        vat = country_of(cpo).vat_percent
        own_tariffs = build_tariffs(party, vat, config.currency, published, rng, reunion_vat)
        own_locations = build_locations(cpo, len(locations) + 1, own_tariffs, rng, published)
        tariffs += own_tariffs
        locations += own_locations
        sites += build_sites(len(sites), index, own_locations, own_tariffs)
    agreements, coverage = build_agreements(cpos, emsps, config.currency, published, rng)
    return ReferenceData(
        cpos=cpos,
        emsps=emsps,
        tariffs=tuple(tariffs),
        locations=tuple(locations),
        agreements=agreements,
        sites=tuple(sites),
        coverage=coverage,
    )
