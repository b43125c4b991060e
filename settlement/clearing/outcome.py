"""What clearing decides for one submitted event: booked, exact duplicate, or rejected.

Each outcome names its kind (`OutcomeKind`, the cdr_outcome.outcome column), and the parties
and keys it is about as values (`PartyRef`, `CdrKey`, `TransactionId`); only a rejection's
CDR key stays text, a `ClaimedCdrKey`: a record that failed to decode may claim a key that
does not parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, NewType

from schemas.hub.agreement import Agreement
from schemas.hub.ledger import Transaction, TransactionId
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import Violation
from settlement.allocation import Allocation
from settlement.clearing.entry import LedgerEntry
from settlement.clearing.reasons import Reason, Stage
from settlement.rating import RatedCdr

# The canonical text of the CDR key a rejected record names, as far as it could be read:
# a claim, not a validated `CdrKey` (str(CdrKey) when the CDR did parse).
ClaimedCdrKey = NewType("ClaimedCdrKey", str)


class OutcomeKind(StrEnum):
    """How one consumed record ended (cdr_outcome.outcome)."""

    LEDGERED = "LEDGERED"  # booked: its transaction is in the ledger
    DUPLICATE = "DUPLICATE"  # the exact CDR was already booked: nothing new
    REJECTED = "REJECTED"  # refused with a reason: a rejection row


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event ends as a rejection with a machine-readable reason."""

    outcome_kind: ClassVar[OutcomeKind] = OutcomeKind.REJECTED
    reason: Reason | str  # a Reason, or a rating engine reason code (RatingError.reason_code)
    stage: Stage
    message: str
    violations: tuple[Violation, ...] = ()
    submitter: PartyRef | None = None  # the proven partner, else the one the record claims
    cdr_key: ClaimedCdrKey | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The exact CDR is already booked: counted, nothing else happens."""

    outcome_kind: ClassVar[OutcomeKind] = OutcomeKind.DUPLICATE
    cdr_key: CdrKey
    transaction_id: TransactionId


@dataclass(frozen=True, slots=True)
class Booked:
    """A ledger entry to book (the balanced transaction, its amounts, settlement period and
    traceability record), with everything that explains it (invariant 7)."""

    outcome_kind: ClassVar[OutcomeKind] = OutcomeKind.LEDGERED
    cdr: Cdr
    entry: LedgerEntry
    cpo: PartyRef
    emsp: PartyRef
    rated: RatedCdr | None  # None for a reversal: it mirrors the original, nothing is priced
    agreement: Agreement | None
    allocation: Allocation | None
    time_zone: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def transaction(self) -> Transaction:
        return self.entry.transaction


Outcome = Booked | Duplicate | Rejected
