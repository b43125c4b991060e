"""One record's fault stays with that record: the batch goes on, the record is rejected as
internal_error (retryable) instead of failing the batch on every redelivery."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from pipeline.clearing.batch import BatchLedger, Clearing, decide_one
from pipeline.clearing.events import EVENT_BYTES_MAX, EventWriter
from pipeline.clearing.refcache import ReferenceCache
from pipeline.hubkeys import HubSigner, record_proof_keys
from schemas.hub.party import PartyRef
from settlement.clearing.decide import clear
from settlement.clearing.outcome import Booked, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.reasons import Reason, Stage
from settlement.keys import HubKey, HubKeyring
from settlement.store.clearing_store import SubmittedRecord
from tests.unit.clearing.factories import (
    NOW,
    FakeLedger,
    FakeReferences,
    agreement,
    cdr,
    decoded,
    tariff,
)

KEYRING = HubKeyring(HubKey.from_secret(bytes(range(32))))
TOPIC = "roamclear.cdr.submitted"
RECORD = SubmittedRecord(TOPIC, 3, 41, None, b"k", b"{}", tuple(HubSigner(KEYRING)(TOPIC, b"{}")))


async def _no_send(_: object) -> None:
    return None


CLEARING = Clearing(
    ReferenceCache(),
    PlausibilityLimits(),
    EventWriter("t", PartyRef.parse("NL*HUB")),
    _no_send,
    record_proof_keys(KEYRING),
)


class _BrokenReferences(FakeReferences):
    """References whose agreement lookup fails, as a bug in the hub's own code would."""

    def agreements(self, cpo: PartyRef, emsp: PartyRef | None) -> list[object]:
        raise KeyError("a bug")


def test_a_fault_inside_the_decision_rejects_that_record_only() -> None:
    item = decoded(cdr(1))
    outcome, proof = decide_one(RECORD, item, NOW, CLEARING, _BrokenReferences(), BatchLedger({}))
    assert isinstance(outcome, Rejected) and proof == KEYRING.current.key_id
    assert (outcome.reason, outcome.stage) == (Reason.INTERNAL_ERROR, Stage.CLEAR)
    assert "KeyError" in outcome.message
    assert outcome.submitter == "NL*TNM" and outcome.cdr_key == "NL*TNM*CDR-2026-0002"


def test_a_sound_decision_is_booked_into_the_batch_ledger() -> None:
    books = BatchLedger({})
    refs = FakeReferences(tariffs=[tariff()], agreements=[agreement()])
    outcome, proof = decide_one(RECORD, decoded(cdr(1)), NOW, CLEARING, refs, books)
    assert isinstance(outcome, Booked) and proof == KEYRING.current.key_id
    assert books.booking("NL*TNM*CDR-2026-0002") is not None


def test_a_rated_event_with_thousands_of_periods_stays_below_the_record_limit() -> None:
    refs = FakeReferences(tariffs=[tariff()], agreements=[agreement()])
    booked = clear(decoded(cdr(1)), NOW, PlausibilityLimits(), refs, FakeLedger())
    assert isinstance(booked, Booked) and booked.rated is not None
    many = replace(booked, rated=replace(booked.rated, periods=booked.rated.periods * 4_000))
    rated_record = CLEARING.writer.booked(many, datetime(2026, 4, 1, tzinfo=UTC))[0]
    assert len(rated_record.value) <= EVENT_BYTES_MAX
    assert b'"periods":[]' in rated_record.value
    assert f'"periods_omitted":{len(many.rated.periods)}'.encode() in rated_record.value
