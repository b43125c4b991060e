"""Every tariff.json and cdr.json of ../shared/ocpi-cases parses into the 2.2.1 models.

Complete cases (the specification's) parse as they are. Minimal fixtures (tandemdrive,
ocpi-tariffs-py) lack identity fields the strict models require; they parse after
`schemas.ocpi.completion` fills exactly those with placeholders, and the test checks that
nothing a price depends on was filled. OCPI 2.1.1 cases go through the conversion.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.ocpi.completion import complete_cdr, complete_tariff
from schemas.ocpi.v211 import parse_cdr_any, parse_tariff_any
from schemas.validation import SchemaInvalid, parse_cdr, parse_tariff

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "ocpi-cases"
CASES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir()) if CORPUS.is_dir() else []
OWNER = PartyRef.parse("ZZ*CPO")
EMSP = PartyRef.parse("ZZ*MSP")
TARIFF_DATE = datetime(2020, 1, 1, tzinfo=UTC)

# Fields a price depends on; completion must never fill them.
RATING_FIELDS = {"charging_periods", "currency", "total_cost", "total_energy", "total_time"}
# A nonstandard tariff dimension (SESSION_TIME) that a strict parser must refuse (README).
REFUSED_TARIFFS = {
    "ocpi-tariffs-py-v211-session_time": (
        "elements[0].price_components[0].type",
        "must be one of: ENERGY, FLAT, PARKING_TIME, TIME",
    ),
}


def expected(case: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((CORPUS / case / "expected.json").read_text())
    return result


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    if not CORPUS.is_dir():
        pytest.fail(
            f"corpus not found at {CORPUS}: the data comes from ../shared/ocpi-cases "
            "(see its README.md)"
        )


@pytest.mark.parametrize("case", CASES or ["(no corpus)"])
def test_cdr_parses(case: str) -> None:
    raw = loads_exact((CORPUS / case / "cdr.json").read_bytes())
    completed = complete_cdr(raw, owner=OWNER)
    assert not RATING_FIELDS & set(completed.filled)
    cdr = parse_cdr_any(completed.data, owner=OWNER, emsp=EMSP)
    assert cdr.charging_periods
    if expected(case)["ocpi_version"] == "2.2.1" and case.startswith("ocpi-spec-"):
        assert completed.filled == ()
        assert parse_cdr((CORPUS / case / "cdr.json").read_bytes()) == cdr
    if expected(case)["ocpi_version"] == "2.1.1":
        assert cdr.total_cost.incl_vat is None


@pytest.mark.parametrize("case", CASES or ["(no corpus)"])
def test_tariff_parses(case: str) -> None:
    raw = loads_exact((CORPUS / case / "tariff.json").read_bytes())
    completed = complete_tariff(raw, owner=OWNER, last_updated=TARIFF_DATE)
    if case in REFUSED_TARIFFS:
        with pytest.raises(SchemaInvalid) as caught:
            parse_tariff_any(completed.data, owner=OWNER)
        violation = caught.value.violations[0]
        assert (violation.path, violation.rule) == REFUSED_TARIFFS[case]
        return
    tariff = parse_tariff_any(completed.data, owner=OWNER)
    assert tariff.elements
    if case.startswith("ocpi-spec-"):
        assert completed.filled == ()
        assert parse_tariff((CORPUS / case / "tariff.json").read_bytes()) == tariff
