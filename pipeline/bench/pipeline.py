"""`roamclear bench pipeline`: end-to-end clearing throughput and latency, and the cost of
clearing against a passthrough agent with the same number of workers.

Each run uses a scratch database (created on the configured or embedded PostgreSQL, dropped
after) and a fresh topic prefix, so the user's books are never touched. Workers are real
`roamclear worker` processes; they are started and joined before the first CDR is produced.

- clearing: N simulated CDRs produced as fast as possible (or at `rate` per second);
  throughput is N over the time from the first produce to the last outcome committed in
  PostgreSQL; latency per CDR is the outcome's commit time minus the broker timestamp of its
  record (with an unpaced producer it includes the time a record waits in the backlog).
- passthrough: the same N records, forwarded unchanged by the same batching and producer
  path; throughput is N over the time from the first produce to the timestamp of the last
  forwarded record (the producer's create time, set when the agent sent it).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.bench.scratch import scratch_database
from pipeline.config import Settings
from pipeline.kafka.admin import create_topics
from pipeline.kafka.client import read_from_beginning, records_in_topic
from pipeline.simulate import ScenarioConfig, build_reference
from pipeline.simulate.scenario import iter_submissions
from pipeline.simulate.send import register, send_stream
from pipeline.topics import Topic, TopicSpec, topic_name, topic_specs
from pipeline.workers import worker_processes
from settlement.store.db import connect

READY_WAIT_S_MAX = 60.0
DONE_WAIT_S_MAX = 900.0


@dataclass(frozen=True, slots=True)
class PipelineBench:
    cdrs: int
    workers: int
    per_s: float
    p50_ms: float
    p99_ms: float
    passthrough_per_s: float

    @property
    def ratio(self) -> float:
        return self.passthrough_per_s / self.per_s


def _decided(database_url: str) -> int:
    """Outcomes so far: a count over the narrow outcome table, because polling the latency
    join (which reads every archived payload) would take CPU from the workers being timed."""
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM cdr_outcome").fetchone()
    assert row is not None
    return int(row["n"])


def _outcome_stats(database_url: str, topic: str) -> tuple[int, float | None, list[float]]:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n, extract(epoch FROM max(o.decided_at)) AS last "
            "FROM cdr_outcome o JOIN raw_event e USING (archive_id) WHERE e.topic = %s",
            (topic,),
        ).fetchone()
        assert row is not None
        if row["n"] == 0:
            return 0, None, []
        latencies = conn.execute(
            "SELECT extract(epoch FROM o.decided_at - e.broker_timestamp) * 1000 AS ms "
            "FROM cdr_outcome o JOIN raw_event e USING (archive_id) WHERE e.topic = %s",
            (topic,),
        ).fetchall()
    return row["n"], float(row["last"]), [float(r["ms"]) for r in latencies]


def _clearing_run(
    settings: Settings, cdrs: int, workers: int, log_dir: Path, rate: float | None
) -> tuple[float, float, float]:
    assert settings.database_url is not None
    config = ScenarioConfig(cdrs=cdrs, seed=1)
    data = build_reference(config)
    register(settings, data)
    submissions = list(iter_submissions(config, data))
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    with worker_processes(settings, workers, log_dir) as group:
        started = time.time()
        asyncio.run(send_stream(settings, submissions, rate))
        deadline = time.monotonic() + DONE_WAIT_S_MAX
        while time.monotonic() < deadline:
            done = _decided(settings.database_url)
            if done >= cdrs:
                break
            group.check_alive()
            time.sleep(0.5)
        else:
            raise TimeoutError(f"only {done} of {cdrs} CDRs were decided")
    done, last, latencies = _outcome_stats(settings.database_url, topic)
    assert last is not None and done == cdrs
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return cdrs / (last - started), p50, p99


def _passthrough_run(
    settings: Settings, cdrs: int, workers: int, log_dir: Path, rate: float | None
) -> float:
    assert settings.kafka_bootstrap_servers is not None
    target = f"{settings.topic_prefix}.bench.passthrough"
    create_topics(settings.kafka_bootstrap_servers, [TopicSpec(target, 8)])
    config = ScenarioConfig(cdrs=cdrs, seed=1)
    submissions = list(iter_submissions(config, build_reference(config)))
    with worker_processes(settings, workers, log_dir, passthrough_to=target) as group:
        started = time.time()
        asyncio.run(send_stream(settings, submissions, rate))
        deadline = time.monotonic() + DONE_WAIT_S_MAX
        while time.monotonic() < deadline:
            if asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, target)) >= cdrs:
                break
            group.check_alive()
            time.sleep(0.2)
        else:
            raise TimeoutError("the passthrough did not forward every record")
    # the end is the last forwarded record's own timestamp, not when polling noticed it
    forwarded = asyncio.run(read_from_beginning(settings.kafka_bootstrap_servers, target, cdrs))
    last = max(record.timestamp_ms for record in forwarded) / 1000
    return cdrs / (last - started)


def run(settings: Settings, cdrs: int, workers: int, rate: float | None = None) -> PipelineBench:
    assert settings.kafka_bootstrap_servers is not None
    with tempfile.TemporaryDirectory(prefix="roamclear-bench-") as tmp:
        base = Path(tmp)
        assert settings.database_url is not None
        with scratch_database(settings.database_url) as database_url:
            clearing = replace(
                settings, database_url=database_url, topic_prefix=f"bench{uuid.uuid4().hex[:8]}"
            )
            create_topics(settings.kafka_bootstrap_servers, topic_specs(clearing.topic_prefix))
            (base / "clearing").mkdir()
            per_s, p50, p99 = _clearing_run(clearing, cdrs, workers, base / "clearing", rate)
            passthrough = replace(clearing, topic_prefix=f"bench{uuid.uuid4().hex[:8]}")
            create_topics(settings.kafka_bootstrap_servers, topic_specs(passthrough.topic_prefix))
            (base / "passthrough").mkdir()
            passthrough_per_s = _passthrough_run(
                passthrough, cdrs, workers, base / "passthrough", rate
            )
    return PipelineBench(cdrs, workers, per_s, p50, p99, passthrough_per_s)
