"""Disputes of booked CDRs: their states, the allowed transitions, and what an opening or a
decision must satisfy. Pure: settlement/store/disputes.py reads and writes them, and
migration 0018 holds PostgreSQL to the same rules.

    open ──► accepted      hub; names the credit CDR from the CPO that reverses the CDR,
      │                    or books an ADJUSTMENT: the opener credited, the other debited
      ├────► declined      hub; the note is its reasoning
      ├────► written_off   hub; accepted, settled outside the ledger
      └────► withdrawn     the party that opened it

Every state after `open` is final. The eMSP DE*EMP disputes CDR NL*TNM*CDR1 (20.00 EUR):

    >>> cdr = BookedCdr("NL*TNM*CDR1", "CHARGE", None, "NL*TNM", "DE*EMP", "EUR")
    >>> opening_problems(cdr, "DE*EMP", "AMOUNT_INCORRECT", "4.5", "idle fee charged twice")
    ()
    >>> refusal(DisputeState.OPEN, Action.WITHDRAW, actor="NL*TNM", opened_by="DE*EMP",
    ...         note="x")
    'only DE*EMP, which opened it, may withdraw it'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.party import PartyRef
from settlement.batches.periods import period_of

NOTE_CHARS_MAX: Final = 2000
"""A note (an opening's or a decision's) is at most this long (the table's CHECK too)."""
CLAIMED_AMOUNT_MAX: Final = Decimal("1000000")
"""No single CDR is disputed for more than this: a larger figure is a typo."""
HUB: Final = "hub"
"""The actor of the hub's decisions (accept, decline, write off)."""
_AMOUNT_EXPONENT: Final = -4  # the ledger's numeric(20, 4)


class DisputeError(Exception):
    """Root of the dispute errors."""


class DisputeRefused(DisputeError):
    """An opening or a transition breaks a rule: the problems say which, all at once. The
    operator (or partner) corrects the input; nothing was written."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        assert problems, "a refusal names its problems"
        super().__init__("; ".join(problems))
        self.problems = problems


class DisputeNotFound(DisputeError):
    """No dispute with this id (or none the caller may see): check the id."""


class DisputeState(StrEnum):
    OPEN = "open"  # waiting for the hub's decision (or the opener's withdrawal)
    ACCEPTED = "accepted"  # the hub agreed: a credit CDR reversed the CDR, or an ADJUSTMENT
    DECLINED = "declined"  # the hub disagreed; its note says why
    WITHDRAWN = "withdrawn"  # the party that opened it took it back
    WRITTEN_OFF = "written_off"  # the hub agreed; settled outside the ledger


class Reason(StrEnum):
    AMOUNT_INCORRECT = "AMOUNT_INCORRECT"  # the total is wrong for the session as it happened
    TARIFF_INCORRECT = "TARIFF_INCORRECT"  # priced with the wrong tariff (or version)
    NOT_RECOGNISED = "NOT_RECOGNISED"  # the eMSP knows no such session or token
    DUPLICATE = "DUPLICATE"  # the same session was billed under another CDR too
    SESSION_DISPUTED = "SESSION_DISPUTED"  # times, energy or location are contested
    OTHER = "OTHER"  # anything else: the note says what


class Action(StrEnum):
    """What a caller asks of an open dispute; each leads to one state."""

    ACCEPT = "accept"
    DECLINE = "decline"
    WITHDRAW = "withdraw"
    WRITE_OFF = "write-off"

    @property
    def target(self) -> DisputeState:
        return _TARGET[self]


_TARGET: Final = {
    Action.ACCEPT: DisputeState.ACCEPTED,
    Action.DECLINE: DisputeState.DECLINED,
    Action.WITHDRAW: DisputeState.WITHDRAWN,
    Action.WRITE_OFF: DisputeState.WRITTEN_OFF,
}

TRANSITIONS: Final[dict[DisputeState, frozenset[DisputeState]]] = {
    DisputeState.OPEN: frozenset(
        {
            DisputeState.ACCEPTED,
            DisputeState.DECLINED,
            DisputeState.WITHDRAWN,
            DisputeState.WRITTEN_OFF,
        }
    ),
    DisputeState.ACCEPTED: frozenset(),
    DisputeState.DECLINED: frozenset(),
    DisputeState.WITHDRAWN: frozenset(),
    DisputeState.WRITTEN_OFF: frozenset(),
}
"""The allowed edges (dispute_edge_allowed in migration 0018 is the same table)."""


def allowed(current: DisputeState, target: DisputeState) -> bool:
    return target in TRANSITIONS[current]


@dataclass(frozen=True, slots=True)
class BookedCdr:
    """A ledger transaction as a dispute sees it: its key, kind and parties."""

    cdr_key: str
    kind: str  # CHARGE, REVERSAL (a credit CDR) or ROUNDING
    reverses_cdr_key: str | None  # a REVERSAL's original CDR
    cpo: str
    emsp: str
    currency: str


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of a dispute's history."""

    seq: int
    from_state: DisputeState | None
    to_state: DisputeState
    actor: str  # the deciding party: the opener, or HUB
    recorded_by: str  # who entered it: cli:<user>, api:finance, api:<partner>
    note: str
    at: datetime

    def json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "from": None if self.from_state is None else self.from_state.value,
            "to": self.to_state.value,
            "actor": self.actor,
            "recorded_by": self.recorded_by,
            "note": self.note,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Dispute:
    dispute_id: int
    cdr_key: str
    opened_by: str
    reason: Reason
    claimed_amount: Decimal
    currency: str
    note: str
    state: DisputeState
    credit_cdr_key: str | None
    adjustment_id: str | None  # the ADJUSTMENT transaction that settled it
    opened_at: datetime
    history: tuple[Transition, ...] = ()

    def json(self) -> dict[str, Any]:
        """Money as a decimal string, never a JSON number."""
        return {
            "id": self.dispute_id,
            "cdr_key": self.cdr_key,
            "opened_by": self.opened_by,
            "reason": self.reason.value,
            "claimed_amount": str(self.claimed_amount),
            "currency": self.currency,
            "note": self.note,
            "state": self.state.value,
            "credit_cdr_key": self.credit_cdr_key,
            "adjustment_id": self.adjustment_id,
            "opened_at": self.opened_at.isoformat(),
            "history": [t.json() for t in self.history],
        }


def parse_amount(text: str) -> Decimal | str:
    """A claimed amount from text: the Decimal, or why it is refused (never rounded)."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        return f"claimed amount {text!r} is not a decimal number (use a point: 12.50)"
    if not amount.is_finite() or amount <= 0:
        return f"claimed amount {text!r} must be a positive number"
    if amount > CLAIMED_AMOUNT_MAX:
        return f"claimed amount {text!r} exceeds {CLAIMED_AMOUNT_MAX}"
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < _AMOUNT_EXPONENT:
        return f"claimed amount {text!r} has more than 4 decimals"
    return amount


def _note_problem(note: str) -> str | None:
    if len(note) > NOTE_CHARS_MAX:
        return f"note is {len(note)} characters; at most {NOTE_CHARS_MAX}"
    return None


def opening_problems(
    cdr: BookedCdr | None, opened_by: str, reason: str, claimed_amount: str, note: str
) -> tuple[str, ...]:
    """Every reason this opening is refused (empty: it may open). `cdr` is None when no
    booking has the key."""
    problems: list[str] = []
    if cdr is None:
        problems.append("no booked CDR with this key")
    elif cdr.kind != "CHARGE":
        problems.append(f"{cdr.cdr_key} is a {cdr.kind}, not a booked CDR charge")
    try:
        party = str(PartyRef.parse(opened_by))
    except ValueError:
        problems.append(f"opened by {opened_by!r}: not a party reference CC*PID")
    else:
        if cdr is not None and party not in (cdr.cpo, cdr.emsp):
            problems.append(
                f"{party} is neither the CPO ({cdr.cpo}) nor the eMSP ({cdr.emsp}) of the CDR"
            )
    if reason not in Reason.__members__:
        problems.append(f"reason {reason!r} is not one of {', '.join(Reason)}")
    amount = parse_amount(claimed_amount)
    if isinstance(amount, str):
        problems.append(amount)
    if (note_problem := _note_problem(note)) is not None:
        problems.append(note_problem)
    return tuple(problems)


def refusal(
    current: DisputeState, action: Action, actor: str, opened_by: str, note: str
) -> str | None:
    """Why `actor` may not take `action` on a dispute in `current` (None: it may). Withdrawing
    is the opener's alone; every other decision is the hub's; every decision says why."""
    if not allowed(current, action.target):
        return f"a dispute that is {current.value} cannot be moved to {action.target.value}"
    if action is Action.WITHDRAW and actor != opened_by:
        return f"only {opened_by}, which opened it, may withdraw it"
    if action is not Action.WITHDRAW and actor != HUB:
        return f"only the hub may {action.value} a dispute"
    if not note.strip():
        return f"{action.value} needs a note saying why"
    return _note_problem(note)


def credit_problems(disputed: BookedCdr, credit: BookedCdr | None) -> tuple[str, ...]:
    """Why `credit` does not resolve a dispute of `disputed` (empty: it does): it must be a
    credit CDR (a REVERSAL) from the CPO reversing exactly the disputed CDR."""
    if credit is None:
        return ("no booked credit CDR with this key",)
    problems = []
    if credit.kind != "REVERSAL":
        problems.append(f"{credit.cdr_key} is a {credit.kind}, not a credit CDR")
    elif credit.reverses_cdr_key != disputed.cdr_key:
        problems.append(
            f"{credit.cdr_key} reverses {credit.reverses_cdr_key}, not {disputed.cdr_key}"
        )
    if credit.cpo != disputed.cpo:
        problems.append(f"{credit.cdr_key} is from {credit.cpo}, not the CPO {disputed.cpo}")
    return tuple(problems)


def resolution_problems(
    action: Action, credit_cdr_key: str | None, adjustment_amount: str | None
) -> tuple[str, ...]:
    """Accepting names exactly one resolution (a credit CDR or an adjustment amount); no
    other decision names one."""
    given = (credit_cdr_key is not None) + (adjustment_amount is not None)
    if action is Action.ACCEPT and given != 1:
        return ("accepting names either the credit CDR or the adjustment amount, one of them",)
    if action is not Action.ACCEPT and given:
        return (f"{action.value} books nothing: no credit CDR, no adjustment",)
    return ()


def adjustment_problems(
    disputed: BookedCdr, claimed_amount: Decimal, amount_text: str
) -> tuple[str, ...]:
    """Why the hub cannot settle this dispute with an adjustment of `amount_text` (empty: it
    can): a positive amount of at most 4 decimals, no more than claimed, between two parties
    (a self-billing CDR has one account: nothing to move)."""
    problems = []
    amount = parse_amount(amount_text)
    if isinstance(amount, str):
        problems.append(amount.replace("claimed amount", "adjustment amount"))
    elif amount > claimed_amount:
        problems.append(f"adjustment {amount} exceeds the claimed {claimed_amount}")
    if disputed.cpo == disputed.emsp:
        problems.append(f"{disputed.cdr_key} is self-billed: an adjustment would move nothing")
    return tuple(problems)


@dataclass(frozen=True, slots=True)
class StatementMark:
    """A dispute on a statement line: of the line's CDR, or the adjustment that settled it
    (then `adjusts` names the original CDR and `original_value_time` its period)."""

    transaction_id: str
    dispute_id: int
    state: DisputeState
    opened_by: str
    reason: Reason
    adjusts: str | None
    original_value_time: str | None

    def json(self) -> dict[str, Any]:
        return {
            "dispute_id": self.dispute_id,
            "state": self.state.value,
            "opened_by": self.opened_by,
            "reason": self.reason.value,
            "adjusts": self.adjusts,
            "original_value_time": self.original_value_time,
        }


def marks_by_transaction(
    marks: Iterable[StatementMark],
) -> dict[str, tuple[StatementMark, ...]]:
    """The one rule of every statement format: a line is disputed when a mark names its
    transaction (its CDR's charge or reversal, or the adjustment that settled a dispute)."""
    found: dict[str, list[StatementMark]] = {}
    for mark in marks:
        found.setdefault(mark.transaction_id, []).append(mark)
    return {transaction_id: tuple(own) for transaction_id, own in found.items()}


def disputed_lines(transaction_ids: Iterable[str], marks: Iterable[StatementMark]) -> int:
    """How many of a statement's lines (one transaction id per line) are disputed."""
    marked = marks_by_transaction(marks)
    return sum(1 for transaction_id in transaction_ids if transaction_id in marked)


def mark_text(mark: StatementMark, period_kind: SettlementPeriod, time_zone: str) -> str:
    """A mark as the CSV, the PDF and `statements show` print it; an adjustment's names its
    dispute, the CDR it adjusts and that CDR's period (in the statement's grid):

        dispute 7 accepted (DE*EMP, AMOUNT_INCORRECT): adjusts NL*TNM*CDR1 of period
        2025-05-01..2025-06-01
    """
    text = f"dispute {mark.dispute_id} {mark.state.value} ({mark.opened_by}, {mark.reason.value})"
    if mark.adjusts is None:
        return text
    text += f": adjusts {mark.adjusts}"
    if mark.original_value_time is None:
        return text
    period = period_of(datetime.fromisoformat(mark.original_value_time), period_kind, time_zone)
    local = ZoneInfo(time_zone)
    start, end = period.start.astimezone(local), period.end.astimezone(local)
    return f"{text} of period {start:%Y-%m-%d}..{end:%Y-%m-%d}"


def marks_text(
    marks: Iterable[StatementMark], period_kind: SettlementPeriod, time_zone: str
) -> dict[str, str]:
    """Each disputed line's marks as one text, by transaction id."""
    return {
        transaction_id: "; ".join(mark_text(m, period_kind, time_zone) for m in own)
        for transaction_id, own in marks_by_transaction(marks).items()
    }


def mark_statement(body: dict[str, Any], marks: tuple[StatementMark, ...]) -> dict[str, Any]:
    """A statement's JSON with its disputes: each line's `disputes` and the count of disputed
    lines in `totals.disputed_lines`. The marks are today's, not part of what was closed and
    sealed (the checksum covers ledger figures only), so a dispute opened after the close
    shows on the statement without changing it."""
    by_transaction = marks_by_transaction(marks)
    lines = [
        {**line, "disputes": [m.json() for m in by_transaction.get(line["transaction_id"], ())]}
        for line in body.get("lines", [])
    ]
    disputed = disputed_lines((line["transaction_id"] for line in lines), marks)
    marked = {**body, "totals": {**body["totals"], "disputed_lines": disputed}}
    if "lines" in body:
        marked["lines"] = lines
    return marked
