"""The dispute state machine and its rules, without a database: every transition, every
refused one, who may take which, and what an opening or an accepting credit must be."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from settlement.disputes import (
    HUB,
    NOTE_CHARS_MAX,
    TRANSITIONS,
    Action,
    BookedCdr,
    DisputeRefused,
    DisputeState,
    adjustment_problems,
    allowed,
    credit_problems,
    opening_problems,
    parse_amount,
    refusal,
    resolution_problems,
)

S = DisputeState
EDGES = {
    (S.OPEN, S.ACCEPTED),
    (S.OPEN, S.DECLINED),
    (S.OPEN, S.WITHDRAWN),
    (S.OPEN, S.WRITTEN_OFF),
}
CDR = BookedCdr("NL*TNM*CDR1", "CHARGE", None, "NL*TNM", "DE*EMP", "EUR")
OPENER = "DE*EMP"


def _actor(action: Action) -> str:
    return OPENER if action is Action.WITHDRAW else HUB


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_the_transition_table_is_exactly_the_four_edges_out_of_open(
    current: DisputeState, target: DisputeState
) -> None:
    assert allowed(current, target) == ((current, target) in EDGES)


def test_every_state_but_open_is_final() -> None:
    assert {state for state, targets in TRANSITIONS.items() if targets} == {S.OPEN}


@pytest.mark.parametrize(("current", "action"), list(itertools.product(S, Action)))
def test_each_action_is_taken_from_open_only(current: DisputeState, action: Action) -> None:
    answer = refusal(current, action, _actor(action), OPENER, "because")
    if current is S.OPEN:
        assert answer is None
    else:
        assert answer == (
            f"a dispute that is {current.value} cannot be moved to {action.target.value}"
        )


@pytest.mark.parametrize("action", list(Action))
def test_withdrawing_is_the_openers_and_deciding_the_hubs(action: Action) -> None:
    wrong = HUB if action is Action.WITHDRAW else OPENER
    answer = refusal(S.OPEN, action, wrong, OPENER, "because")
    assert answer is not None
    assert ("opened it" in answer) == (action is Action.WITHDRAW)
    assert refusal(S.OPEN, action, "NL*TNM", OPENER, "because") is not None  # the counterparty


@pytest.mark.parametrize("action", list(Action))
def test_every_decision_says_why_within_the_limit(action: Action) -> None:
    assert refusal(S.OPEN, action, _actor(action), OPENER, "  ") == (
        f"{action.value} needs a note saying why"
    )
    long = refusal(S.OPEN, action, _actor(action), OPENER, "x" * (NOTE_CHARS_MAX + 1))
    assert long is not None and str(NOTE_CHARS_MAX) in long


def test_an_opening_reports_every_problem_at_once() -> None:
    assert opening_problems(CDR, "nl*tnm", "DUPLICATE", "12.5", "") == ()
    problems = opening_problems(CDR, "FR*XYZ", "WRONG", "1,50", "x" * (NOTE_CHARS_MAX + 1))
    assert len(problems) == 4
    assert problems[0] == "FR*XYZ is neither the CPO (NL*TNM) nor the eMSP (DE*EMP) of the CDR"
    assert problems[1].startswith("reason 'WRONG' is not one of AMOUNT_INCORRECT")
    assert "not a decimal number (use a point" in problems[2]
    reversal = BookedCdr("NL*TNM*CR1", "REVERSAL", "NL*TNM*CDR1", "NL*TNM", "DE*EMP", "EUR")
    assert opening_problems(reversal, OPENER, "OTHER", "1", "") == (
        "NL*TNM*CR1 is a REVERSAL, not a booked CDR charge",
    )
    assert opening_problems(None, "bad", "OTHER", "1", "") == (
        "no booked CDR with this key",
        "opened by 'bad': not a party reference CC*PID",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.5", Decimal("4.5")),
        ("0.0001", Decimal("0.0001")),
        ("0", "must be a positive number"),
        ("-1", "must be a positive number"),
        ("NaN", "must be a positive number"),
        ("0.00001", "more than 4 decimals"),
        ("1000000.01", "exceeds 1000000"),
        ("1e3x", "not a decimal number"),
    ],
)
def test_a_claimed_amount_is_exact_or_refused(text: str, expected: Decimal | str) -> None:
    parsed = parse_amount(text)
    if isinstance(expected, Decimal):
        assert parsed == expected and isinstance(parsed, Decimal)
    else:
        assert isinstance(parsed, str) and expected in parsed


def test_an_accepting_credit_must_be_the_cpos_reversal_of_the_disputed_cdr() -> None:
    good = BookedCdr("NL*TNM*CR1", "REVERSAL", "NL*TNM*CDR1", "NL*TNM", "DE*EMP", "EUR")
    assert credit_problems(CDR, good) == ()
    other = BookedCdr("NL*TNM*CR2", "REVERSAL", "NL*TNM*CDR9", "NL*TNM", "DE*EMP", "EUR")
    assert credit_problems(CDR, other) == ("NL*TNM*CR2 reverses NL*TNM*CDR9, not NL*TNM*CDR1",)
    charge = BookedCdr("FR*CPO*C1", "CHARGE", None, "FR*CPO", "DE*EMP", "EUR")
    assert credit_problems(CDR, charge) == (
        "FR*CPO*C1 is a CHARGE, not a credit CDR",
        "FR*CPO*C1 is from FR*CPO, not the CPO NL*TNM",
    )
    assert credit_problems(CDR, None) == ("no booked credit CDR with this key",)


def test_a_refusal_carries_its_problems() -> None:
    refused = DisputeRefused(("a", "b"))
    assert refused.problems == ("a", "b") and str(refused) == "a; b"


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(("credit", "amount"), [(None, None), ("K", None), (None, "1"), ("K", "1")])
def test_accepting_names_exactly_one_resolution_and_nothing_else_names_one(
    action: Action, credit: str | None, amount: str | None
) -> None:
    one = (credit is None) != (amount is None)
    problems = resolution_problems(action, credit, amount)
    if action is Action.ACCEPT:
        assert (problems == ()) == one
    else:
        assert (problems == ()) == (credit is None and amount is None)


def test_an_adjustment_is_at_most_the_claim_between_two_parties() -> None:
    claimed = Decimal("5.0000")
    assert adjustment_problems(CDR, claimed, "5") == ()
    assert adjustment_problems(CDR, claimed, "5.0001") == (
        "adjustment 5.0001 exceeds the claimed 5.0000",
    )
    assert adjustment_problems(CDR, claimed, "-1") == (
        "adjustment amount '-1' must be a positive number",
    )
    own = BookedCdr("NL*TNM*S1", "CHARGE", None, "NL*TNM", "NL*TNM", "EUR")
    assert adjustment_problems(own, claimed, "1") == (
        "NL*TNM*S1 is self-billed: an adjustment would move nothing",
    )
