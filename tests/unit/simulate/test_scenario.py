"""The scenario as a whole: determinism, streaming, counts and the reference data."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from pipeline.simulate import (
    Category,
    CategoryShares,
    ScenarioConfig,
    generate_scenario,
    iter_submissions,
)
from schemas.hub.party import PartnerRole
from tests.unit.simulate.conftest import CONFIG, Book

SMALL = ScenarioConfig(cdrs=300, seed=3)


def test_same_seed_same_bytes() -> None:
    first, second = generate_scenario(SMALL), generate_scenario(SMALL)
    assert first.submissions == second.submissions
    assert first.tariffs == second.tariffs and first.agreements == second.agreements


def test_other_seed_other_bytes() -> None:
    other = generate_scenario(ScenarioConfig(cdrs=300, seed=4))
    assert other.submissions != generate_scenario(SMALL).submissions


def test_streaming_yields_the_same_records() -> None:
    assert tuple(iter_submissions(SMALL)) == generate_scenario(SMALL).submissions


def test_counts_follow_the_shares(book: Book) -> None:
    expected = book.scenario.expected
    counted = Counter(s.category for s in book.scenario.submissions)
    assert {c: counted[c] for c in Category} == {c: expected.count(c) for c in Category}
    for category in Category:
        share = CONFIG.shares.of(category)
        assert abs(expected.count(category) - share * CONFIG.cdrs) <= Decimal(len(Category))
    mismatches = sum(s.declared_mismatch for s in book.scenario.submissions)
    assert mismatches == expected.declared_mismatch == 18  # 1 % of 1840 valid, half up


def test_outcomes_add_up(book: Book) -> None:
    expected = book.scenario.expected
    assert expected.submitted == CONFIG.cdrs
    assert expected.ledgered + expected.rejected + expected.duplicates == expected.submitted
    assert expected.ledgered == expected.valid + expected.credit
    assert expected.duplicates == expected.exact_duplicate


def test_originals_come_first(book: Book) -> None:
    for index, submission in enumerate(book.scenario.submissions):
        if submission.original_index is not None:
            assert submission.original_index < index
            original = book.scenario.submissions[submission.original_index]
            assert original.category is Category.VALID


def test_partners_are_realistic(book: Book) -> None:
    partners = book.scenario.partners
    roles = Counter(p.role for p in partners)
    assert roles == {PartnerRole.CPO: CONFIG.cpos, PartnerRole.EMSP: CONFIG.emsps}
    assert str(partners[0].party) == "NL*TLP" and partners[0].name
    assert len({p.party for p in partners}) == len(partners)


def test_tariffs_cover_the_interesting_cases(book: Book) -> None:
    tariffs = book.scenario.tariffs
    per_cpo = Counter((t.country_code, t.party_id) for t in tariffs)
    assert all(1 <= n <= 3 for n in per_cpo.values()) and len(per_cpo) == CONFIG.cpos
    assert all(len(t.id) <= 36 and t.currency == "EUR" for t in tariffs)
    restrictions = [e.restrictions for t in tariffs for e in t.elements if e.restrictions]
    assert any(r.start_time and r.end_time and r.end_time < r.start_time for r in restrictions)
    kinds = {c.type.value for t in tariffs for e in t.elements for c in e.price_components}
    assert kinds >= {"ENERGY", "PARKING_TIME", "FLAT"}
    steps = {
        (c.type.value, c.step_size) for t in tariffs for e in t.elements for c in e.price_components
    }
    assert ("PARKING_TIME", 300) in steps and ("ENERGY", 1) in steps
    assert {c.vat for t in tariffs for e in t.elements for c in e.price_components} >= {
        Decimal("21"),
        Decimal("19"),
        Decimal("20"),
    }
    assert any(t.min_price or t.max_price for t in tariffs)


def test_locations_span_time_zones(book: Book) -> None:
    zones = {location.time_zone for location in book.scenario.locations}
    assert {"Europe/Amsterdam", "Europe/Berlin", "Europe/Brussels", "Europe/Paris"} <= zones
    assert "Indian/Reunion" in zones and "Europe/Madrid" in zones
    evses = [e for location in book.scenario.locations for e in location.evses]
    assert all(e.evse_id and e.uid for e in evses)
    published = {(t.country_code, t.party_id, t.id) for t in book.scenario.tariffs}
    for location in book.scenario.locations:
        for evse in location.evses:
            for tariff_id in evse.connectors[0].tariff_ids:
                assert (location.country_code, location.party_id, tariff_id) in published


def test_agreements_vary_and_leave_a_gap(book: Book) -> None:
    agreements = book.scenario.agreements
    assert any(a.emsp is None for a in agreements)
    assert len({a.settles for a in agreements}) == 2
    assert len({a.settlement_period for a in agreements}) == 3
    assert len({a.fee_payer for a in agreements}) == 2
    cpos = [p.party for p in book.scenario.partners if p.role is PartnerRole.CPO]
    emsps = [p.party for p in book.scenario.partners if p.role is PartnerRole.EMSP]
    gaps = [
        (c, e)
        for c in cpos
        for e in emsps
        if (str(c), str(e)) not in book.agreements and (str(c), None) not in book.agreements
    ]
    assert gaps


@pytest.mark.parametrize(
    "config",
    [
        lambda: ScenarioConfig(cpos=1),
        lambda: ScenarioConfig(window_days=1),
        lambda: ScenarioConfig(declared_mismatch_share=0.01),  # type: ignore[arg-type]
        lambda: ScenarioConfig(shares=CategoryShares(credit=Decimal("0.99"))),
    ],
)
def test_bad_configs_are_refused(config: object) -> None:
    with pytest.raises(ValueError):
        config()  # type: ignore[operator]


def test_too_many_credits_are_refused() -> None:
    shares = CategoryShares(credit=Decimal("0.6"))
    with pytest.raises(ValueError, match="credits"):
        generate_scenario(ScenarioConfig(cdrs=100, shares=shares))
