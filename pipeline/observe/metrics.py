"""The Prometheus metrics roamclear's processes count in memory (docs/observability.md lists
every one, with those the API computes from PostgreSQL at scrape time).

Each process kind has its own registry, so a test process that builds a worker's and an API's
parts exposes each set once: `WORKER` (`roamclear worker`), `API` (`roamclear api`),
`CLOSER` (`roamclear settle run`), `DELIVERER` (`roamclear deliver`). Labels are bounded
sets only: outcomes and reason codes are enums, topics and partitions are roamclear's own;
never a CDR id or a party.

The clearing worker counts per batch, not per record: `observe_batch` adds a batch's counts
(already kept by `commit_batch`) to the counters, one call per outcome and reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

WORKER: Final = CollectorRegistry()
API: Final = CollectorRegistry()
CLOSER: Final = CollectorRegistry()
DELIVERER: Final = CollectorRegistry()

# events per clearing batch: up to ROAMCLEAR_CLEARING_BATCH_MAX (2,000 by default)
BATCH_RECORDS_BUCKETS: Final = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
# one batch's PostgreSQL transaction and broker acks: milliseconds to seconds
COMMIT_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# one settlement close: a second to many minutes on a large ledger
CLOSE_SECONDS_BUCKETS: Final = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

CDRS: Final = Counter(
    "roamclear_clearing_cdrs",
    "Events of cdr.submitted cleared, by outcome (booked, rejected, duplicate, ...)",
    ["outcome"],
    registry=WORKER,
)
REJECTIONS: Final = Counter(
    "roamclear_clearing_rejections",
    "Events of cdr.submitted rejected by the clearing worker, by reason code",
    ["reason"],
    registry=WORKER,
)
REPLAYED: Final = Counter(
    "roamclear_clearing_replayed_records",
    "Events delivered again that were already archived (skipped, nothing changed)",
    registry=WORKER,
)
BATCH_RECORDS: Final = Histogram(
    "roamclear_clearing_batch_records",
    "Events per committed clearing batch",
    buckets=BATCH_RECORDS_BUCKETS,
    registry=WORKER,
)
COMMIT_SECONDS: Final = Histogram(
    "roamclear_clearing_commit_duration_seconds",
    "One clearing batch from its transaction's start to its events acked",
    buckets=COMMIT_SECONDS_BUCKETS,
    registry=WORKER,
)
LAST_COMMIT: Final = Gauge(
    "roamclear_clearing_last_commit_timestamp_seconds",
    "When this worker last committed a clearing batch (Unix time; 0: not yet)",
    registry=WORKER,
)

INGEST_REJECTIONS: Final = Counter(
    "roamclear_ingest_rejections",
    "CDRs the OCPI receiver refused or rejected at ingest, by reason code",
    ["reason"],
    registry=API,
)

CLOSER_RUNS: Final = Counter(
    "roamclear_closer_runs",
    "Closes by result: closed (batches closed), empty (nothing to close), failed",
    ["result"],
    registry=CLOSER,
)
CLOSE_SECONDS: Final = Histogram(
    "roamclear_closer_run_duration_seconds",
    "One settlement close, start to end (failed ones included)",
    buckets=CLOSE_SECONDS_BUCKETS,
    registry=CLOSER,
)
STATEMENTS: Final = Counter(
    "roamclear_closer_statements",
    "Settlement batches closed by this closer (each is one partner statement)",
    registry=CLOSER,
)
LAST_CLOSE: Final = Gauge(
    "roamclear_closer_last_success_timestamp_seconds",
    "When this closer last finished a close without failing (Unix time; 0: not yet)",
    registry=CLOSER,
)

DELIVERY_ATTEMPTS: Final = Counter(
    "roamclear_delivery_attempts",
    "CDR POSTs to eMSPs answered or failed, by what follows: delivered, retrying, dead",
    ["outcome"],
    registry=DELIVERER,
)


def observe_batch(
    received: int,
    skipped: int,
    outcomes: Mapping[str, int],
    reasons: Mapping[str, int],
    commit_s: float,
) -> None:
    """One committed clearing batch: a few calls whatever its size."""
    for outcome, count in outcomes.items():
        CDRS.labels(outcome).inc(count)
    for reason, count in reasons.items():
        REJECTIONS.labels(reason).inc(count)
    if skipped:
        REPLAYED.inc(skipped)
    BATCH_RECORDS.observe(received)
    COMMIT_SECONDS.observe(commit_s)
    LAST_COMMIT.set(time.time())


def observe_close(result: str, duration_s: float, batches: int) -> None:
    """One settlement close (`result`: closed, empty or failed)."""
    CLOSER_RUNS.labels(result).inc()
    CLOSE_SECONDS.observe(duration_s)
    if batches:
        STATEMENTS.inc(batches)
    if result != "failed":
        LAST_CLOSE.set(time.time())


def observe_attempts(outcomes: Mapping[str, int]) -> None:
    """Finished delivery attempts, counted by outcome (`DeliveryState` values, lower case)."""
    for outcome, count in outcomes.items():
        DELIVERY_ATTEMPTS.labels(outcome).inc(count)


def exposition(*registries: CollectorRegistry) -> bytes:
    """The text format of `registries` and of the process's own (CPU, memory, files)."""
    return b"".join(generate_latest(r) for r in (*registries, REGISTRY))
