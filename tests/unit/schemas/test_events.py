"""Event envelopes: shape, round trip, splitting, the payload-name mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import RFC_4122, UUID

import pytest

from schemas.events import (
    ENVELOPES,
    EVENT_PAYLOAD,
    CdrRated,
    CdrSubmitted,
    EventType,
    LedgerTransaction,
    RejectedEvent,
    envelope_bytes,
    new_envelope,
    parse_envelope,
    random_event_id,
    split_envelope,
)
from schemas.hub.ledger import Transaction, TransactionKind
from schemas.hub.party import PartyRef
from schemas.ocpi import Cdr
from schemas.validation import SchemaInvalid, parse_cdr
from schemas.wire import to_ocpi_json
from tests.unit.schemas.factories import CDR

SUBMITTER = PartyRef.parse("NL*TNM")


def test_every_event_type_has_an_envelope_and_a_payload_name() -> None:
    assert set(ENVELOPES) == set(EventType) == set(EVENT_PAYLOAD)
    for kind, model in ENVELOPES.items():
        assert EVENT_PAYLOAD[kind] in model.model_fields


def test_cdr_submitted_round_trip_and_wire_shape() -> None:
    cdr = Cdr.model_validate(CDR)
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    envelope = new_envelope(CdrSubmitted, submitter=SUBMITTER, payload=cdr, occurred_at=moment)
    raw = to_ocpi_json(envelope)
    data = json.loads(raw, parse_float=Decimal)
    assert list(data)[:5] == ["event_id", "type", "version", "occurred_at", "submitter"]
    assert data["type"] == "cdr.submitted"
    assert data["version"] == 1
    assert data["occurred_at"] == "2025-03-01T12:00:00Z"
    assert data["submitter"] == {"country_code": "NL", "party_id": "TNM"}
    assert UUID(data["event_id"]).version == 4
    assert parse_envelope(raw) == envelope


def test_split_envelope_leaves_a_bad_payload_to_the_caller() -> None:
    envelope = new_envelope(CdrSubmitted, submitter=SUBMITTER, payload=Cdr.model_validate(CDR))
    data = json.loads(to_ocpi_json(envelope), parse_float=Decimal)
    data["cdr"]["currency"] = "euro"
    raw = json.dumps(data, default=str)
    with pytest.raises(SchemaInvalid):
        parse_envelope(raw)
    header, payload = split_envelope(raw)
    assert header.type is EventType.CDR_SUBMITTED
    assert header.submitter == SUBMITTER
    with pytest.raises(SchemaInvalid) as caught:
        parse_cdr(payload)
    assert [v.path for v in caught.value.violations] == ["currency"]


def test_rejection_keeps_the_original_payload_as_text() -> None:
    rejected = new_envelope(
        RejectedEvent,
        submitter=SUBMITTER,
        payload={
            "reason_code": "schema_invalid",
            "message": "1 violation",
            "stage": "validate",
            "violations": [{"path": "$", "rule": "invalid JSON", "code": "json_invalid"}],
            "original_payload": '{"id": ',
            "source_topic": "roamclear.cdr.submitted",
            "source_partition": 3,
            "source_offset": 42,
        },
    )
    again = parse_envelope(to_ocpi_json(rejected))
    assert again == rejected
    assert isinstance(again, RejectedEvent)
    assert again.rejection.original_payload == '{"id": '


def test_wrong_type_is_refused() -> None:
    with pytest.raises(SchemaInvalid) as caught:
        split_envelope(b'{"event_id": "x", "type": "cdr.eaten", "occurred_at": "2025-01-01"}')
    assert {v.path for v in caught.value.violations} >= {"event_id", "type", "occurred_at"}


def test_envelope_bytes_writes_what_the_models_write() -> None:
    transaction = Transaction.model_validate(
        {
            "transaction_id": "6c1a3b0e-8a51-5b55-9f5f-1c2d3e4f5a6b",
            "cdr_key": {"party": {"country_code": "NL", "party_id": "TNM"}, "cdr_id": "CDR1"},
            "kind": "CHARGE",
            "postings": [
                {
                    "account": "partner:DE*EMS",
                    "side": "DEBIT",
                    "amount": "12.1000",
                    "currency": "EUR",
                },
                {
                    "account": "partner:NL*TNM",
                    "side": "CREDIT",
                    "amount": "11.9",
                    "currency": "EUR",
                },
                {"account": "hub:fees", "side": "CREDIT", "amount": "0.2000", "currency": "EUR"},
            ],
            "content_hash": "ab" * 32,
            "occurred_at": "2025-03-01T13:00:00+01:00",
        }
    )
    reversal = transaction.model_copy(
        update={
            "kind": TransactionKind.REVERSAL,
            "reverses": "5b2c3d4e-0000-5000-8000-000000000001",
        }
    )
    rated = {"total_cost": {"excl_vat": "5.5000", "incl_vat": None}, "periods": [{"index": 0}]}
    moment = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    event_id = UUID("0f8e4a55-6e4b-4b8e-9a0e-3c1d2b3a4f5e")
    for envelope, payload in (
        (LedgerTransaction, transaction),
        (LedgerTransaction, reversal),
        (CdrRated, rated),
    ):
        fast = envelope_bytes(
            envelope, submitter=SUBMITTER, payload=payload, occurred_at=moment, event_id=event_id
        )
        model = new_envelope(
            envelope, submitter=SUBMITTER, payload=payload, occurred_at=moment, event_id=event_id
        )
        assert fast == to_ocpi_json(model)
        assert parse_envelope(fast) == model


def test_fresh_event_ids_are_distinct_version_4_uuids() -> None:
    ids = [random_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2_000]:
        parsed = UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == RFC_4122


def test_each_envelope_gets_its_own_event_id_unless_given() -> None:
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    first, second = (
        json.loads(envelope_bytes(CdrRated, submitter=SUBMITTER, payload={}, occurred_at=moment))
        for _ in range(2)
    )
    assert first["event_id"] != second["event_id"]
    assert first["occurred_at"] == second["occurred_at"] == "2025-03-01T12:00:00Z"
