"""roamclear's own objects: parties and keys, agreements, ledger transactions, batches."""

from schemas.hub.agreement import (
    Agreement,
    FeePayer,
    HubFee,
    RoundingMode,
    RoundingPolicy,
    SettlementBasis,
    SettlementPeriod,
)
from schemas.hub.batch import BatchState, BatchTotals, SettlementBatch
from schemas.hub.ledger import AccountId, Posting, Side, Transaction, TransactionKind
from schemas.hub.party import CdrKey, PartyRef

__all__ = [
    "AccountId",
    "Agreement",
    "BatchState",
    "BatchTotals",
    "CdrKey",
    "FeePayer",
    "HubFee",
    "PartyRef",
    "Posting",
    "RoundingMode",
    "RoundingPolicy",
    "SettlementBasis",
    "SettlementBatch",
    "SettlementPeriod",
    "Side",
    "Transaction",
    "TransactionKind",
]
