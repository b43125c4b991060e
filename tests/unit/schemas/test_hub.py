"""Hub objects: party references, CDR keys, agreements, transactions, batches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.hub import (
    Agreement,
    BatchState,
    CdrKey,
    PartyRef,
    Posting,
    SettlementBatch,
    Side,
    Transaction,
    TransactionKind,
)
from schemas.hub.ledger import HUB_FEES, partner_account
from schemas.ocpi import Cdr
from schemas.validation import SchemaInvalid, parse_agreement
from schemas.wire import to_ocpi_json
from tests.unit.schemas.factories import CDR, build

HASH = "ab" * 32


def posting(account: str, side: Side, amount: str, currency: str = "EUR") -> Posting:
    return Posting(account=account, side=side, amount=Decimal(amount), currency=currency)


def transaction(*postings: Posting, **fields: Any) -> Transaction:
    return Transaction.model_validate(
        {
            "transaction_id": "tx-1",
            "cdr_key": CdrKey.parse("NL*TNM*CDR-1"),
            "kind": "CHARGE",
            "postings": postings,
            "content_hash": HASH,
            "occurred_at": "2025-03-01T12:00:00Z",
        }
        | fields
    )


def test_party_ref_parses_and_normalises() -> None:
    party = PartyRef.parse("nl*tnm")
    assert str(party) == "NL*TNM"
    assert party == PartyRef(country_code="NL", party_id="TNM")


@pytest.mark.parametrize("text", ["NLTNM", "N1*TNM", "NL*TN", "NL*TNMX", "NL*T-M"])
def test_party_ref_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=r"party reference|must be"):
        PartyRef.parse(text)


def test_cdr_key_parse_and_str() -> None:
    key = CdrKey.parse("NL*TNM*cdr*1")
    assert key.party == PartyRef.parse("NL*TNM")
    assert key.cdr_id == "CDR*1"
    assert str(key) == "NL*TNM*CDR*1"
    with pytest.raises(ValueError, match="CDR key"):
        CdrKey.parse("NL*TNM")


def test_cdr_key_of_cdr_and_of_credit() -> None:
    cdr = Cdr.model_validate(CDR)
    assert str(CdrKey.of(cdr)) == "NL*TNM*CDR-0001"
    assert CdrKey.credited_key(cdr) is None
    credit = Cdr.model_validate(
        build(CDR, id="CDR-0001-C", credit=True, credit_reference_id="CDR-0001")
    )
    assert str(CdrKey.of(credit)) == "NL*TNM*CDR-0001-C"
    assert str(CdrKey.partition_key(credit)) == "NL*TNM*CDR-0001"


def test_balanced_transaction() -> None:
    tx = transaction(
        posting("partner:DE*EMS", Side.DEBIT, "10.00"),
        posting(partner_account(PartyRef.parse("NL*TNM")), Side.CREDIT, "9.85"),
        posting(HUB_FEES, Side.CREDIT, "0.15"),
    )
    assert tx.imbalance() == {}
    assert Transaction.model_validate_json(to_ocpi_json(tx)) == tx


def test_unbalanced_transaction_is_refused() -> None:
    with pytest.raises(ValidationError, match="debits must equal credits"):
        transaction(
            posting("partner:DE*EMS", Side.DEBIT, "10.00"),
            posting("partner:NL*TNM", Side.CREDIT, "9.99"),
        )


def test_balance_is_per_currency() -> None:
    with pytest.raises(ValidationError, match="debits must equal"):
        transaction(
            posting("partner:DE*EMS", Side.DEBIT, "10.00", "EUR"),
            posting("partner:NL*TNM", Side.CREDIT, "10.00", "CHF"),
        )


def test_posting_rules() -> None:
    for amount in ("0", "-1", "0.00001"):
        with pytest.raises(ValidationError):
            posting("hub:fees", Side.DEBIT, amount)
    with pytest.raises(ValidationError):
        posting("nobody", Side.DEBIT, "1")


def test_transaction_needs_two_postings_and_reversal_link() -> None:
    with pytest.raises(ValidationError):
        transaction(posting("hub:fees", Side.DEBIT, "1"))
    legs = (posting("hub:fees", Side.DEBIT, "1"), posting("hub:rounding", Side.CREDIT, "1"))
    with pytest.raises(ValidationError, match="REVERSAL"):
        transaction(*legs, kind=TransactionKind.REVERSAL)
    assert transaction(*legs, kind="REVERSAL", reverses="tx-0").reverses == "tx-0"


def test_agreement_defaults_and_round_trip() -> None:
    agreement = parse_agreement(
        {
            "agreement_id": "tnm-default",
            "version": 3,
            "cpo": {"country_code": "NL", "party_id": "TNM"},
            "currency": "EUR",
            "valid_from": "2025-01-01T00:00:00Z",
            "hub_fee": {"percent": Decimal("1.5"), "minimum": Decimal("0.05")},
            "tolerance": Decimal("0.01"),
        }
    )
    assert agreement.emsp is None
    assert agreement.rounding.decimals == 4
    assert agreement.rounding.mode.value == "HALF_UP"
    assert Agreement.model_validate_json(to_ocpi_json(agreement)) == agreement


def test_agreement_refuses_extras_and_bad_windows() -> None:
    base = {
        "agreement_id": "a",
        "version": 1,
        "cpo": {"country_code": "NL", "party_id": "TNM"},
        "currency": "EUR",
        "valid_from": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(SchemaInvalid) as caught:
        parse_agreement(base | {"valid_to": "2024-01-01T00:00:00Z", "colour": "red"})
    paths = {v.path: v.rule for v in caught.value.violations}
    assert paths == {"colour": "unknown field"}
    with pytest.raises(SchemaInvalid) as caught:
        parse_agreement(base | {"valid_to": "2024-01-01T00:00:00Z"})
    assert caught.value.violations[0].path == "valid_to"


def test_settlement_batch() -> None:
    batch = SettlementBatch.model_validate(
        {
            "batch_id": "b-1",
            "partner": {"country_code": "NL", "party_id": "TNM"},
            "currency": "EUR",
            "period_start": "2025-03-01T00:00:00Z",
            "period_end": "2025-04-01T00:00:00Z",
            "totals": {"debit": Decimal("10"), "credit": Decimal("25.5")},
            "postings_count": 3,
        }
    )
    assert batch.state is BatchState.OPEN
    assert batch.totals.net == Decimal("15.5")
    with pytest.raises(ValidationError, match="CLOSED"):
        SettlementBatch.model_validate(batch.model_dump() | {"state": "CLOSED"})
