"""Ledger transactions for cleared CDRs: charges from allocations, exact reversals.

A charge for CDR NL*TNM*CDR1 (eMSP DE*EMP owes 10.00, fee 0.15 paid by the CPO)::

    DEBIT  partner:DE*EMP  10.0000 EUR
    CREDIT partner:NL*TNM   9.8500 EUR
    CREDIT hub:fees         0.1500 EUR

Its reversal (a credit CDR) swaps every side and links to it. Transaction ids are uuid5 of
the CDR key and content hash, so redelivery books the same id, which PostgreSQL refuses twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from schemas.base import trusted
from schemas.hub.ledger import (
    HUB_FEES,
    POSTINGS_MAX,
    Posting,
    Side,
    Transaction,
    TransactionId,
    TransactionKind,
    partner_account,
)
from schemas.hub.party import CdrKey, PartyRef
from settlement.allocation import Allocation
from settlement.clearing.identity import transaction_id_text
from settlement.money import round_posting

_OPPOSITE = {Side.DEBIT: Side.CREDIT, Side.CREDIT: Side.DEBIT}
_HASH = re.compile(r"^[0-9a-f]{64}$")
_CHARGE_FIELDS = frozenset(Transaction.model_fields) - {"reverses"}
_REVERSAL_FIELDS = frozenset(Transaction.model_fields)


def _posting(account: str, side: Side, amount: Decimal, currency: str) -> Posting | None:
    """A posting with a positive amount; a negative amount flips the side; zero posts nothing."""
    amount = round_posting(amount)
    if amount == 0:
        return None
    if amount < 0:
        side, amount = _OPPOSITE[side], -amount
    return _posting_of(account, side, amount, currency)


def _posting_of(account: str, side: Side, amount: Decimal, currency: str) -> Posting:
    return trusted(
        Posting, {"account": account, "side": side, "amount": amount, "currency": currency}
    )


def _transaction(
    key: CdrKey,
    cdr_hash: str,
    kind: TransactionKind,
    reverses: TransactionId | None,
    postings: tuple[Posting, ...],
    occurred_at: datetime,
) -> Transaction:
    """The transaction, built without validating again what is valid by construction
    (a third of a CDR's booking cost as `model_validate`); the rules the model checks that
    construction does not already guarantee are asserted (a unit test holds the two equal)."""
    transaction = trusted(
        Transaction,
        {
            "transaction_id": TransactionId(transaction_id_text(str(key), cdr_hash)),
            "cdr_key": key,
            "kind": kind,
            "reverses": reverses,
            "postings": postings,
            "content_hash": cdr_hash,
            "occurred_at": occurred_at,
        },
        set(_CHARGE_FIELDS if reverses is None else _REVERSAL_FIELDS),
    )
    assert not transaction.imbalance(), f"unbalanced transaction for {key}"
    assert len(postings) <= POSTINGS_MAX and _HASH.match(cdr_hash), f"bad transaction for {key}"
    assert occurred_at.tzinfo is UTC, "times in the ledger are UTC"
    return transaction


def charge(
    key: CdrKey,
    cdr_hash: str,
    cpo: PartyRef,
    emsp: PartyRef,
    allocation: Allocation,
    currency: str,
    occurred_at: datetime,
) -> Transaction:
    """The CHARGE transaction booking one CDR's allocation."""
    candidates = (
        _posting(partner_account(emsp), Side.DEBIT, allocation.emsp_owes, currency),
        _posting(partner_account(cpo), Side.CREDIT, allocation.cpo_owed, currency),
        _posting(HUB_FEES, Side.CREDIT, allocation.fee, currency),
    )
    postings = tuple(p for p in candidates if p is not None)
    return _transaction(key, cdr_hash, TransactionKind.CHARGE, None, postings, occurred_at)


def reversal(
    key: CdrKey,
    cdr_hash: str,
    original_id: TransactionId,
    original_postings: Sequence[Posting],
    occurred_at: datetime,
) -> Transaction:
    """The REVERSAL of a booked charge: every posting mirrored, nothing recomputed."""
    postings = tuple(
        _posting_of(p.account, _OPPOSITE[p.side], p.amount, p.currency) for p in original_postings
    )
    return _transaction(key, cdr_hash, TransactionKind.REVERSAL, original_id, postings, occurred_at)


def is_balanced(transaction: Transaction) -> bool:
    """Invariant 4 as a named predicate (also enforced by the model and by PostgreSQL)."""
    return not transaction.imbalance()
