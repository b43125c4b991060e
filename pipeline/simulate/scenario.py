"""`generate_scenario` and its streaming twin `iter_submissions`.

Both produce the same records, byte for byte, for the same config: the reference data
first (`build_reference`), then the plan (`build_plan`, exact counts, shuffled, originals
before what derives from them), then one record per plan position (`RecordFactory`).

    >>> scenario = generate_scenario(ScenarioConfig(cdrs=200, seed=1))
    >>> len(scenario.submissions) == scenario.expected.submitted == 200
    True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.simulate.config import ScenarioConfig
from pipeline.simulate.generator import RecordFactory, Submission
from pipeline.simulate.partners import Partner
from pipeline.simulate.plan import Expected, build_plan, category_counts
from pipeline.simulate.reference import ReferenceData, build_reference
from schemas.hub.agreement import Agreement
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff


@dataclass(frozen=True, slots=True)
class Scenario:
    """Reference data, the records to submit, and what the books must show afterwards."""

    config: ScenarioConfig
    partners: tuple[Partner, ...]
    tariffs: tuple[Tariff, ...]
    locations: tuple[Location, ...]
    agreements: tuple[Agreement, ...]
    submissions: tuple[Submission, ...]
    expected: Expected


def iter_submissions(
    config: ScenarioConfig, reference: ReferenceData | None = None
) -> Iterator[Submission]:
    """The scenario's records one at a time (memory bounded: a 1-byte plan per record and a
    bounded pool of originals). `reference` must be `build_reference(config)` if given."""
    if reference is None:
        reference = build_reference(config)
    plan = build_plan(
        category_counts(config), random.Random(f"roamclear-simulate:{config.seed}:plan")
    )
    factory = RecordFactory(config, reference)
    for index, code in enumerate(plan):
        yield factory.make(code, index)


def generate_scenario(config: ScenarioConfig) -> Scenario:
    """The whole scenario in memory (about 2 KB per record)."""
    reference = build_reference(config)
    return Scenario(
        config=config,
        partners=reference.partners,
        tariffs=reference.tariffs,
        locations=reference.locations,
        agreements=reference.agreements,
        submissions=tuple(iter_submissions(config, reference)),
        expected=category_counts(config),
    )
