"""Property: for random simulated streams (valid CDRs, duplicates, conflicts, credits,
malformed and forged records) cleared by the worker's batch decision in random batches,
replaying them as booked, in other chunks, finds every record `same`: the replay carries
the ledger from batch to batch exactly as clearing did (credits meet their charges,
re-sends are duplicates)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.bench.clearing import KEYRING, load_reference, simulated_records
from pipeline.hubkeys import record_proof_keys
from pipeline.simulate import ScenarioConfig, build_reference
from schemas.hub.party import CdrKey
from settlement.clearing.batch import decide_batch, decode_submitted, ledger_after
from settlement.clearing.entry import Booking
from settlement.clearing.outcome import Booked, Duplicate, Outcome, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.replay.model import (
    Change,
    Original,
    OriginalOutcome,
    PricedWith,
    ReplayedRecord,
)
from settlement.replay.run import Replay
from settlement.store.clearing_store import SubmittedRecord
from settlement.store.reference_store import ReferenceSnapshot

pytestmark = pytest.mark.integration
CDRS = 120
START = datetime(2026, 4, 1, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def stream(postgres_server_url: str) -> tuple[ReferenceSnapshot, list[SubmittedRecord]]:
    config = ScenarioConfig(cdrs=CDRS, seed=7)
    data = build_reference(config)
    return load_reference(postgres_server_url, data), simulated_records(config, data)


def _original(outcome: Outcome, decided_at: datetime) -> Original:
    """What the store reads back for a record the worker decided so."""
    if isinstance(outcome, Booked):
        entry = outcome.entry
        return Original(
            OriginalOutcome.LEDGERED, decided_at, str(outcome.transaction.cdr_key),
            outcome.transaction.transaction_id, outcome.transaction.kind, str(outcome.cpo),
            str(outcome.emsp), outcome.cdr.currency, entry.amounts,
            PricedWith.of_trace(entry.trace), None,
        )  # fmt: skip
    if isinstance(outcome, Duplicate):
        return Original(
            OriginalOutcome.DUPLICATE, decided_at, str(outcome.cdr_key),
            outcome.transaction_id, None, None, None, None, None, None, None,
        )  # fmt: skip
    assert isinstance(outcome, Rejected)
    return Original(
        OriginalOutcome.REJECTED, decided_at, outcome.cdr_key, None, None,
        None if outcome.submitter is None else str(outcome.submitter), None, None, None, None,
        str(outcome.reason),
    )  # fmt: skip


def _nothing_before(_: set[CdrKey]) -> dict[CdrKey, Booking]:
    return {}  # the whole stream is replayed: nothing was booked before it


def _slices(total: int, sizes: list[int]) -> Iterator[tuple[int, int]]:
    start, index = 0, 0
    while start < total:
        end = min(total, start + sizes[index % len(sizes)])
        yield start, end
        start, index = end, index + 1


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.integers(1, 60), min_size=1, max_size=6),
    chunks=st.lists(st.integers(1, 60), min_size=1, max_size=6),
)
def test_replay_as_booked_is_a_no_op(
    stream: tuple[ReferenceSnapshot, list[SubmittedRecord]], batches: list[int], chunks: list[int]
) -> None:
    refs, records = stream
    keys, limits = record_proof_keys(KEYRING), PlausibilityLimits()
    ledger: dict[CdrKey, Booking] = {}
    archived: list[ReplayedRecord] = []
    for number, (start, end) in enumerate(_slices(len(records), batches)):
        batch = [(r, decode_submitted(r)) for r in records[start:end]]
        moment = START + timedelta(seconds=number)
        decisions = decide_batch(batch, moment, limits, keys, refs, ledger)
        ledger = ledger_after(ledger, decisions)
        for i, ((r, _), d) in enumerate(zip(batch, decisions, strict=True)):
            original = _original(d.outcome, moment)
            archived.append(
                ReplayedRecord(start + i, r.topic, r.partition, r.offset, None, r.value,
                               r.headers, original)
            )  # fmt: skip
    replay = Replay(lambda _: refs, _nothing_before, keys, limits)
    verdicts = []
    for start, end in _slices(len(archived), chunks):
        verdicts += replay.chunk(archived[start:end])
    assert len(verdicts) == len(records)
    assert [v.change for v in verdicts if v.change is not Change.SAME] == []
    kinds = {v.record.original.outcome for v in verdicts}
    assert kinds == set(OriginalOutcome)  # the stream holds bookings, duplicates, rejections
