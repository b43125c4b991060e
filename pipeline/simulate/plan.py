"""The order of a scenario's records: exact counts per category, shuffled, originals first.

Counts come from the shares, rounded half-up per non-valid category; valid records take the
rest, and `declared_mismatch_share` of them (rounded half-up) declare a total that differs
from the hub's price. The plan is a `bytearray` of category codes (1 byte per record, so a
plan of 10^7 records is 10 MB), shuffled with the scenario's random generator, then repaired
so that every derived record (exact duplicate, conflicting duplicate, credit) has an original
before it: a derived record met too early swaps places with the next suitable valid record.

Credits draw from a bounded pool of creditable originals (see `ORIGINALS_POOL_MAX`); the
repair simulates that pool's size exactly, so the generator never finds it empty.

    >>> counts = category_counts(ScenarioConfig(cdrs=1000))
    >>> counts.valid, counts.credit, counts.declared_mismatch
    (920, 20, 9)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from pipeline.simulate.config import Category, ScenarioConfig

ORIGINALS_POOL_MAX: Final = 4096
"""Earlier originals kept to derive duplicates and credits from (memory bound when streaming)."""

CODES: Final = tuple(Category)  # a record's code is its category's index here
VALID_MISMATCH_CODE: Final = len(CODES)  # a valid record whose declared total differs
_VALID = CODES.index(Category.VALID)
_CREDIT = CODES.index(Category.CREDIT)
_NEEDS_ORIGINAL = frozenset(
    CODES.index(c)
    for c in (Category.EXACT_DUPLICATE, Category.CONFLICTING_DUPLICATE, Category.CREDIT)
)


@dataclass(frozen=True, slots=True)
class Expected:
    """Counts per category and the outcomes the hub must reach for them (DESIGN.md
    invariant 2: submitted = ledgered + rejected + duplicates)."""

    valid: int
    exact_duplicate: int
    conflicting_duplicate: int
    credit: int
    malformed_json: int
    schema_invalid: int
    unknown_tariff: int
    no_agreement: int
    forged: int
    declared_mismatch: int  # among `valid`: declared total differs, within agreement tolerance

    def count(self, category: Category) -> int:
        value: int = getattr(self, category.value)
        return value

    @property
    def submitted(self) -> int:
        return sum(self.count(c) for c in Category)

    @property
    def ledgered(self) -> int:
        """A charge per valid CDR, a reversal per credit."""
        return self.valid + self.credit

    @property
    def duplicates(self) -> int:
        return self.exact_duplicate

    @property
    def rejected(self) -> int:
        return (
            self.conflicting_duplicate
            + self.malformed_json
            + self.schema_invalid
            + self.unknown_tariff
            + self.no_agreement
            + self.forged
        )


def _round_count(share: Decimal, total: int) -> int:
    return int((share * total).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def category_counts(config: ScenarioConfig) -> Expected:
    """Exact counts per category for `config` (raises ValueError when they cannot work)."""
    counts = {
        c: _round_count(config.shares.of(c), config.cdrs) for c in Category if c != Category.VALID
    }
    valid = config.cdrs - sum(counts.values())
    if valid < 0:  # rounding up several small shares of a tiny scenario
        raise ValueError(f"{config.cdrs} records cannot hold the non-valid shares")
    mismatch = _round_count(config.declared_mismatch_share, valid)
    derived = counts[Category.EXACT_DUPLICATE] + counts[Category.CONFLICTING_DUPLICATE]
    if (derived or counts[Category.CREDIT]) and valid == 0:
        raise ValueError("duplicates and credits need valid originals")
    if counts[Category.CREDIT] > valid - mismatch:
        raise ValueError("more credits than creditable valid CDRs (each is credited once)")
    return Expected(
        valid=valid,
        declared_mismatch=mismatch,
        **{c.value: n for c, n in counts.items()},
    )


def build_plan(expected: Expected, rng: random.Random) -> bytearray:
    """The shuffled, repaired sequence of category codes (see the module docstring)."""
    plan = bytearray()
    for code, category in enumerate(CODES):
        count = expected.count(category)
        if category is Category.VALID:
            plan += bytes([VALID_MISMATCH_CODE]) * expected.declared_mismatch
            count -= expected.declared_mismatch
        plan += bytes([code]) * count
    rng.shuffle(plan)
    _repair(plan)
    return plan


def _repair(plan: bytearray) -> None:
    """Move each derived record after an original it can use (deterministic, in place)."""
    originals = 0  # valid records so far (any may be duplicated)
    creditable = 0  # size of the credit pool, as the generator will hold it
    for index in range(len(plan)):
        code = plan[index]
        missing = code in _NEEDS_ORIGINAL and (
            originals == 0 or (code == _CREDIT and creditable == 0)
        )
        if missing:
            wanted = (_VALID,) if code == _CREDIT else (_VALID, VALID_MISMATCH_CODE)
            swap = next((j for j in range(index + 1, len(plan)) if plan[j] in wanted), None)
            if swap is None:
                raise ValueError("not enough valid records to precede duplicates and credits")
            plan[index], plan[swap] = plan[swap], plan[index]
            code = plan[index]
        if code == _VALID:
            originals += 1
            creditable = min(ORIGINALS_POOL_MAX, creditable + 1)
        elif code == VALID_MISMATCH_CODE:
            originals += 1
        elif code == _CREDIT:
            creditable -= 1
