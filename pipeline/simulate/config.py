"""What a scenario is made of: its categories, their shares, and the scenario settings.

Shares are exact decimals (`Decimal("0.02")` is 2 % of all submitted records); the valid
share is what is left. A scenario is reproducible from its config alone: the seed drives
every random choice and `now` replaces the wall clock.

    >>> config = ScenarioConfig(cdrs=1000, seed=7)
    >>> config.shares.valid
    Decimal('0.920')
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final

CPOS_MAX: Final = 99  # party ids of synthetic partners are C01..C99
EMSPS_MAX: Final = 99  # and M01..M99
CDRS_MAX: Final = 100_000_000  # a bound on one run; 1e6 streams in about two minutes
WINDOW_DAYS_MAX: Final = 3660


class Category(StrEnum):
    """What a submitted record is, and so how the hub must end it."""

    VALID = "valid"  # a correct CDR: ledgered
    EXACT_DUPLICATE = "exact_duplicate"  # a re-send of an earlier valid CDR: counted duplicate
    CONFLICTING_DUPLICATE = "conflicting_duplicate"  # an earlier CDR's id, other content
    CREDIT = "credit"  # a credit CDR reversing an earlier valid CDR: ledgered
    MALFORMED_JSON = "malformed_json"  # bytes that are not JSON: rejected
    SCHEMA_INVALID = "schema_invalid"  # JSON envelope, CDR violating OCPI 2.2.1: rejected
    UNKNOWN_TARIFF = "unknown_tariff"  # names a tariff the CPO never published: rejected
    NO_AGREEMENT = "no_agreement"  # CPO and eMSP have no agreement (nor a default): rejected
    # a CDR in a real CPO's name from a bare Kafka client, without the hub's proof:
    # rejected unauthenticated_submitter
    FORGED = "forged"


@dataclass(frozen=True, slots=True)
class CategoryShares:
    """Share of each non-valid category among all submitted records; valid gets the rest."""

    exact_duplicate: Decimal = Decimal("0.02")
    conflicting_duplicate: Decimal = Decimal("0.01")
    credit: Decimal = Decimal("0.02")
    malformed_json: Decimal = Decimal("0.005")
    schema_invalid: Decimal = Decimal("0.01")
    unknown_tariff: Decimal = Decimal("0.005")
    no_agreement: Decimal = Decimal("0.005")
    forged: Decimal = Decimal("0.005")

    def __post_init__(self) -> None:
        for share in fields(self):
            value = getattr(self, share.name)
            if not isinstance(value, Decimal) or not Decimal(0) <= value <= Decimal(1):
                raise ValueError(f"share {share.name} must be a Decimal in [0, 1], not {value!r}")
        if self.valid < 0:
            raise ValueError("the shares of the non-valid categories exceed 1")

    def of(self, category: Category) -> Decimal:
        """The share of `category` (valid: what the others leave)."""
        if category is Category.VALID:
            return self.valid
        share: Decimal = getattr(self, category.value)
        return share

    @property
    def valid(self) -> Decimal:
        return Decimal(1) - sum((getattr(self, s.name) for s in fields(self)), Decimal(0))


DEFAULT_NOW: Final = datetime(2026, 4, 1, tzinfo=UTC)
"""A fixed `now`: the default 30-day window before it contains the EU switch to summer time
(2026-03-29), so some sessions cross a DST change."""


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    """Everything a scenario depends on."""

    cpos: int = 5
    emsps: int = 10
    cdrs: int = 10_000  # submitted records in total, all categories
    seed: int = 0
    shares: CategoryShares = field(default_factory=CategoryShares)
    declared_mismatch_share: Decimal = Decimal("0.01")  # of valid records
    embedded_tariff_share: Decimal = Decimal("0.3")  # of CDRs that carry their tariff
    now: datetime = DEFAULT_NOW
    window_days: int = 30  # sessions start in the window_days before now
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not 2 <= self.cpos <= CPOS_MAX:
            raise ValueError(f"cpos must be in 2..{CPOS_MAX}")
        if not 2 <= self.emsps <= EMSPS_MAX:
            raise ValueError(f"emsps must be in 2..{EMSPS_MAX}")
        if not 1 <= self.cdrs <= CDRS_MAX:
            raise ValueError(f"cdrs must be in 1..{CDRS_MAX}")
        if not 3 <= self.window_days <= WINDOW_DAYS_MAX:
            raise ValueError(f"window_days must be in 3..{WINDOW_DAYS_MAX}")
        for name in ("declared_mismatch_share", "embedded_tariff_share"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not Decimal(0) <= value <= Decimal(1):
                raise ValueError(f"{name} must be a Decimal in [0, 1], not {value!r}")
        if self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if len(self.currency) != 3 or not self.currency.isupper() or not self.currency.isalpha():
            raise ValueError("currency must be an ISO 4217 code such as EUR")
