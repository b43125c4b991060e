"""What a replay reads and what it says: an archived record with its original outcome, and
one verdict per record.

A verdict compares the outcome the hub recorded for an archived record with the one the
core's decision gives now. For a charge booked at 7.2500 excl. VAT and re-priced at
7.4350 with a corrected tariff version:

    >>> delta = ComponentDelta("excl_vat", Decimal("7.2500"), Decimal("7.4350"))
    >>> delta.delta
    Decimal('0.1850')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from schemas.hub.ledger import TransactionKind
from settlement.clearing.entry import Amounts
from settlement.clearing.outcome import Outcome
from settlement.clearing.trace import ChargeTrace, ReversalTrace, Trace

# Records replayed per round trip to PostgreSQL (and per progress step).
REPLAY_CHUNK_MAX = 2_000


class ReferenceMode(StrEnum):
    """Which reference data (tariff, agreement, location versions) a replay decides with."""

    AS_BOOKED = "as-booked"  # as the hub knew it when it decided each record
    CURRENT = "current"  # everything stored now, retroactive corrections included
    AS_OF = "as-of"  # as the hub knew it at a chosen moment


@dataclass(frozen=True, slots=True)
class Reference:
    mode: ReferenceMode
    as_of: datetime | None = None  # for AS_OF only

    def __post_init__(self) -> None:
        assert (self.mode is ReferenceMode.AS_OF) == (self.as_of is not None)

    def __str__(self) -> str:
        if self.as_of is None:
            return self.mode.value
        return f"as-of {self.as_of:%Y-%m-%dT%H:%M:%SZ}"


class OriginalOutcome(StrEnum):
    """cdr_outcome.outcome: what the hub recorded for the archived record."""

    LEDGERED = "LEDGERED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"


@dataclass(frozen=True, slots=True)
class PricedWith:
    """The reference versions a booking names (its trace), compared to tell a cause."""

    tariff_hash: str | None
    agreement: tuple[str, int] | None
    time_zone: str | None

    @classmethod
    def of_trace(cls, trace: Trace) -> PricedWith:
        charge = trace.original if isinstance(trace, ReversalTrace) else trace
        zone = charge.time_zone if isinstance(trace, ChargeTrace) else None
        agreement = (charge.agreement.agreement_id, charge.agreement.version)
        return cls(charge.tariff.content_hash, agreement, zone)


@dataclass(frozen=True, slots=True)
class Original:
    """What the hub recorded for an archived record (cdr_outcome and its rows)."""

    outcome: OriginalOutcome
    decided_at: datetime
    cdr_key: str | None  # the transaction's or the rejection's
    transaction_id: str | None
    kind: TransactionKind | None  # the booked transaction's (LEDGERED)
    cpo: str | None
    emsp: str | None
    currency: str | None
    amounts: Amounts | None  # LEDGERED
    priced_with: PricedWith | None  # LEDGERED
    reason: str | None  # REJECTED: its reason code


@dataclass(frozen=True, slots=True)
class ReplayedRecord:
    """An archived record to replay: a raw_event row as the batch decision reads it (a
    `Submitted`), with what was decided for it then."""

    archive_id: int
    topic: str
    partition: int
    offset: int
    broker_time: datetime | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    original: Original
    unreadable: str | None = None  # the archive keeps what could be read


class Change(StrEnum):
    """How a record's replayed outcome differs from the recorded one."""

    SAME = "same"  # the same outcome, to the last digit
    AMOUNT_CHANGED = "amount_changed"  # booked both times, some amount differs
    NOW_REJECTED = "now_rejected"  # was booked (or a duplicate), would now be rejected
    NOW_BOOKED = "now_booked"  # was rejected, would now book
    OUTCOME_CHANGED = "outcome_changed"  # another rejection reason, booked ↔ duplicate


class Cause(StrEnum):
    """Why a booked amount changed: which input differs from the booking's."""

    TARIFF_VERSION = "tariff_version_changed"
    AGREEMENT = "agreement_changed"
    TIME_ZONE = "time_zone_changed"
    ENGINE = "engine_changed"  # the same inputs, other figures: the code changed


COMPONENTS = ("excl_vat", "incl_vat", "fee")


@dataclass(frozen=True, slots=True)
class ComponentDelta:
    """One amount of a transaction, booked and replayed (a component that changed)."""

    component: str  # one of COMPONENTS
    booked: Decimal
    replayed: Decimal

    @property
    def delta(self) -> Decimal:
        return self.replayed - self.booked


@dataclass(frozen=True, slots=True)
class Verdict:
    """One archived record's replay."""

    record: ReplayedRecord
    change: Change
    replayed: Outcome
    cdr_key: str | None
    cpo: str | None
    emsp: str | None
    currency: str | None
    causes: tuple[Cause, ...] = ()
    deltas: tuple[ComponentDelta, ...] = ()
    reason: str | None = None  # the replayed rejection's reason code
    message: str | None = None  # the replayed rejection's message

    def concerns(self, partner: str) -> bool:
        """Whether the partner is the CDR's CPO or eMSP."""
        return partner in (self.cpo, self.emsp)
