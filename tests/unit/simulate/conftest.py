"""One scenario of 2,000 records shared by the simulator's tests, and lookups into it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from pipeline.simulate import Category, Scenario, ScenarioConfig, Submission, generate_scenario
from schemas.events import CdrSubmitted, parse_envelope
from schemas.hub.agreement import Agreement
from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff

CONFIG = ScenarioConfig(cdrs=2000, seed=42)


@dataclass(frozen=True)
class Book:
    """The scenario with its reference data indexed the way the hub looks it up."""

    scenario: Scenario
    tariffs: dict[tuple[str, str, str], Tariff]  # (country, party, tariff id)
    zones: dict[tuple[str, str, str], str]  # (country, party, location id)
    agreements: dict[tuple[str, str | None], Agreement]  # (cpo, emsp or None)

    def of(self, category: Category) -> list[tuple[int, Submission]]:
        return [
            (index, s)
            for index, s in enumerate(self.scenario.submissions)
            if s.category is category
        ]

    def tariff(self, cdr: Cdr) -> Tariff:
        tariff_id = cdr.charging_periods[0].tariff_id
        assert tariff_id is not None
        return self.tariffs[(cdr.country_code, cdr.party_id, tariff_id)]

    def zone(self, cdr: Cdr) -> str:
        return self.zones[(cdr.country_code, cdr.party_id, cdr.cdr_location.id)]

    def agreement(self, cdr: Cdr) -> Agreement | None:
        cpo = f"{cdr.country_code}*{cdr.party_id}"
        emsp = f"{cdr.cdr_token.country_code}*{cdr.cdr_token.party_id}"
        return self.agreements.get((cpo, emsp)) or self.agreements.get((cpo, None))


def cdr_of(submission: Submission) -> Cdr:
    envelope = parse_envelope(submission.value)
    assert isinstance(envelope, CdrSubmitted)
    return envelope.cdr


def cdr_bytes(submission: Submission) -> bytes:
    """The CDR's own bytes inside the envelope (the payload is the envelope's last field)."""
    value = submission.value
    return value[value.index(b'"cdr":') + len(b'"cdr":') : -1]


def payload(submission: Submission) -> Any:
    return json.loads(submission.value, parse_float=Decimal)["cdr"]


def _party(ref: PartyRef) -> str:
    return str(ref)


@pytest.fixture(scope="session")
def book() -> Book:
    scenario = generate_scenario(CONFIG)
    return Book(
        scenario=scenario,
        tariffs={(t.country_code, t.party_id, t.id): t for t in scenario.tariffs},
        zones={
            (loc.country_code, loc.party_id, loc.id): loc.time_zone for loc in scenario.locations
        },
        agreements={
            (_party(a.cpo), None if a.emsp is None else _party(a.emsp)): a
            for a in scenario.agreements
        },
    )
