"""`roamclear bench clearing`: CPU time per CDR of each clearing step, in one process.

The same simulated stream `bench pipeline` sends (valid CDRs, duplicates, conflicts, credits,
malformed and schema-invalid records) is run through the worker's own functions, with the
broker and PostgreSQL outside the timed part:

- decode: exact JSON, the envelope, the OCPI CDR schema;
- decide: `decide_batch`, the worker's own batch decision, over the whole stream: the proof
  of the submitter (the hub's HMAC, as on simulated traffic), plausibility, canonical key,
  content hash, dedupe, rating, allocation, the ledger entry with its traceability record
  (against the run's own bookings);
- events: the `cdr.rated` and `ledger.transactions` records of every booking, and the
  `rejected` record of every rejection;
- rows: the transaction and posting rows of every booking, written by binary COPY.

Each step is timed with the process's CPU clock over the whole stream; the figure is the
median of several runs. Their sum is what one CDR costs a worker before any I/O, so
1,000,000 / total is a ceiling per core that no amount of batching or I/O tuning can lift.
Reference data comes from a scratch database on the configured (or embedded) PostgreSQL,
loaded and indexed exactly as the worker loads it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pipeline.bench.scratch import scratch_database
from pipeline.clearing.events import EventWriter
from pipeline.hubkeys import HubSigner, record_proof_keys
from pipeline.simulate import ScenarioConfig, build_reference
from pipeline.simulate.reference import ReferenceData
from pipeline.simulate.scenario import iter_submissions
from schemas.hub.party import PartyRef
from settlement.clearing.batch import decide_batch
from settlement.clearing.decode import Decoded, decode
from settlement.clearing.outcome import Booked, Duplicate, Outcome, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.keys import HubKey, HubKeyring
from settlement.store import reference_store
from settlement.store.clearing_rows import posting_rows, transaction_row
from settlement.store.clearing_store import SubmittedRecord
from settlement.store.db import connect
from settlement.store.reference_store import ReferenceSnapshot

STEPS: Final = ("decode", "decide", "events", "rows")
HUB: Final = PartyRef(country_code="NL", party_id="HUB")
TOPIC: Final = "bench.cdr.submitted"
KEYRING: Final = HubKeyring(HubKey.from_secret(b"roamclear bench clearing hub key!"))


@dataclass(frozen=True, slots=True)
class ClearingBench:
    cdrs: int
    runs: int
    booked: int
    duplicates: int
    rejected: int
    us_per_cdr: dict[str, float]  # step -> median CPU µs per submitted record

    @property
    def total_us(self) -> float:
        return sum(self.us_per_cdr.values())

    @property
    def ceiling_per_core_s(self) -> float:
        """CDRs per second one core could clear if I/O cost nothing."""
        return 1_000_000 / self.total_us


def load_reference(database_url: str, data: ReferenceData) -> ReferenceSnapshot:
    """Store the scenario's reference data in a scratch database and load it back as the
    worker does (so the bench prices with the same indexed snapshot)."""
    with scratch_database(database_url) as url, connect(url) as conn:
        for partner in data.partners:
            reference_store.add_partner(conn, partner.party, partner.role, partner.name)
        reference_store.add_tariffs(conn, data.tariffs, datetime.now(UTC))
        reference_store.add_locations(conn, data.locations)
        reference_store.add_agreements(conn, data.agreements)
        conn.commit()
        return reference_store.load_snapshot(conn)


def simulated_records(
    config: ScenarioConfig, data: ReferenceData, timestamp_ms: int | None = None
) -> list[SubmittedRecord]:
    """The scenario's records as the worker consumes them, signed with the bench hub key."""
    sign = HubSigner(KEYRING)
    return [
        SubmittedRecord(
            TOPIC,
            0,
            offset,
            timestamp_ms,
            submission.key,
            submission.value,
            tuple(sign(TOPIC, submission.value)) if submission.signed else (),
        )
        for offset, submission in enumerate(iter_submissions(config, data))
    ]


def _cpu_s(step: Callable[[], object]) -> float:
    started = time.process_time()
    step()
    return time.process_time() - started


def _one_run(
    records: Sequence[SubmittedRecord], refs: ReferenceSnapshot, now: datetime
) -> tuple[dict[str, float], list[Outcome]]:
    writer, limits, keys = (
        EventWriter("bench", HUB),
        PlausibilityLimits(),
        record_proof_keys(KEYRING),
    )
    decoded: list[Decoded | Rejected] = []
    outcomes: list[Outcome] = []

    def decide() -> None:
        batch = list(zip(records, decoded, strict=True))
        decisions = decide_batch(batch, now, limits, keys, refs, {})
        outcomes.extend(decision.outcome for decision in decisions)

    seconds = {
        "decode": _cpu_s(lambda: decoded.extend(decode(r.value) for r in records)),
        "decide": _cpu_s(decide),
    }
    pairs = list(zip(records, outcomes, strict=True))

    def events() -> None:
        for record, outcome in pairs:
            if isinstance(outcome, Booked):
                writer.booked(outcome, now)
            elif isinstance(outcome, Rejected):
                writer.rejected(outcome, record, now)

    def rows() -> None:
        for archive_id, outcome in enumerate(outcomes):
            if isinstance(outcome, Booked):
                transaction_row(outcome, archive_id, now)
                posting_rows(outcome)

    seconds["events"] = _cpu_s(events)
    seconds["rows"] = _cpu_s(rows)
    return seconds, outcomes


def run(
    database_url: str,
    cdrs: int,
    runs: int,
    progress: Callable[[int], None] = lambda _: None,
) -> ClearingBench:
    config = ScenarioConfig(cdrs=cdrs, seed=1)
    data = build_reference(config)
    refs = load_reference(database_url, data)
    records = simulated_records(config, data)
    # as `roamclear worker` runs: the start-up heap frozen, young objects collected rarely
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(1_000_000, 20, 20)
    per_run: dict[str, list[float]] = {step: [] for step in STEPS}
    outcomes: list[Outcome] = []
    try:
        for done in range(1, runs + 1):
            seconds, outcomes = _one_run(records, refs, datetime.now(UTC))
            for step in STEPS:
                per_run[step].append(seconds[step])
            progress(done)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
    return ClearingBench(
        cdrs=cdrs,
        runs=runs,
        booked=sum(isinstance(o, Booked) for o in outcomes),
        duplicates=sum(isinstance(o, Duplicate) for o in outcomes),
        rejected=sum(isinstance(o, Rejected) for o in outcomes),
        us_per_cdr={
            step: statistics.median(values) * 1_000_000 / cdrs for step, values in per_run.items()
        },
    )
