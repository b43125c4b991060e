"""What clearing decides for one submitted event: booked, exact duplicate, or rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.hub.agreement import Agreement
from schemas.hub.ledger import Transaction
from schemas.ocpi.cdr import Cdr
from schemas.validation import Violation
from settlement.allocation import Allocation
from settlement.clearing.entry import LedgerEntry
from settlement.clearing.reasons import Reason, Stage
from settlement.rating import RatedCdr


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event ends as a rejection with a machine-readable reason."""

    reason: Reason | str  # a Reason, or a rating engine reason code (RatingError.reason_code)
    stage: Stage
    message: str
    violations: tuple[Violation, ...] = ()
    submitter: str | None = None
    cdr_key: str | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The exact CDR is already booked: counted, nothing else happens."""

    cdr_key: str
    transaction_id: str


@dataclass(frozen=True, slots=True)
class Booked:
    """A ledger entry to book (the balanced transaction, its amounts, settlement period and
    traceability record), with everything that explains it (invariant 7)."""

    cdr: Cdr
    entry: LedgerEntry
    cpo: str
    emsp: str
    rated: RatedCdr | None  # None for a reversal: it mirrors the original, nothing is priced
    agreement: Agreement | None
    allocation: Allocation | None
    time_zone: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def transaction(self) -> Transaction:
        return self.entry.transaction


Outcome = Booked | Duplicate | Rejected
