"""`roamclear bench ingest`: CDR POSTs per second over OCPI HTTP, against the HTTP floor.

One API process (`python -m pipeline.bench.ingest_server`: the app `roamclear api` serves,
plus one authenticated no-op endpoint) runs on a scratch database and a fresh topic prefix;
N partners, each registered with its own token, keep one keep-alive connection each and send
one request at a time, as fast as answers come:

1. warm-up (not timed): one no-op and one CDR per partner (tokens cached, producer and
   connections up);
2. floor: the same number of requests to `GET /ocpi/2.2.1/bench-noop`, which
   authenticates and rate-limits exactly as the CDR POST does and answers an empty success
   envelope: what the process costs per request before any ingest work;
3. ingest: M distinct CDRs POSTed (`/ocpi/2.2.1/cdrs`), each answered only after the broker
   acked its record (acks=all); every answer must be 201, and the topic must hold every
   CDR afterwards.

Latency is per request, from writing it to reading its whole answer, on the client's
monotonic clock. The client is a few lines of HTTP/1.1 over asyncio streams (no library),
so it takes as little as possible of the CPU the server is measured on.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

from pipeline.api.serving import free_port
from pipeline.bench.scratch import scratch_database
from pipeline.config import Settings
from pipeline.kafka.admin import create_topics
from pipeline.kafka.client import records_in_topic
from pipeline.topics import Topic, topic_name, topic_specs
from schemas.base import loads_exact
from schemas.hub.party import PartnerRole, PartyRef
from schemas.wire import encode_json
from settlement.store import ocpi_tokens, reference_store
from settlement.store.db import connect

NOOP_PATH: Final = "/ocpi/2.2.1/bench-noop"
CDRS_PATH: Final = "/ocpi/2.2.1/cdrs"
CLIENTS_MAX: Final = 500
START_WAIT_S_MAX: Final = 60.0
STOP_WAIT_S_MAX: Final = 20.0
ANSWER_WAIT_S_MAX: Final = 60.0  # one request; beyond, the run fails


class BenchFailed(Exception):
    """The run did not do what it measures (an answer other than expected, a CDR missing on
    the topic, the API process gone): the figures would mean nothing."""


@dataclass(frozen=True, slots=True)
class IngestBench:
    clients: int
    cdrs: int
    per_s: float
    p50_ms: float
    p99_ms: float
    floor_per_s: float
    # the API process's CPU per CDR POST and per no-op, from /proc in clock ticks (10 ms):
    # meaningful over thousands of requests, not over a few dozen
    server_cpu_us: float
    floor_server_cpu_us: float

    @property
    def ratio(self) -> float:
        """How many no-op answers the process gives in the time of one CDR ingest."""
        return self.floor_per_s / self.per_s

    def as_json(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "cdrs": self.cdrs,
            "per_s": round(self.per_s, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "floor_per_s": round(self.floor_per_s, 1),
            "ratio": round(self.ratio, 2),
            "server_cpu_us": round(self.server_cpu_us),
            "floor_server_cpu_us": round(self.floor_server_cpu_us),
        }


@dataclass(frozen=True, slots=True)
class _Partner:
    party: PartyRef
    authorization: str


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        self._writer.write(head + body)
        head_in = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), ANSWER_WAIT_S_MAX)
        status = int(head_in[9:12])
        length = 0
        for line in head_in.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


def _head(method: str, path: str, partner: _Partner, length: int | None = None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: {partner.authorization}",
        f"X-Request-ID: {uuid.uuid4()}",
    ]
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _cdr_bodies(party: PartyRef, count: int, tag: str) -> list[bytes]:
    sample: dict[str, Any] = loads_exact(
        resources.files("pipeline.samples").joinpath("cdrs_nl_tnm.json").read_bytes()
    )[0]
    return [
        encode_json(
            {
                **sample,
                "country_code": party.country_code,
                "party_id": party.party_id,
                "id": f"{tag}-{party.party_id}-{index}",
            }
        ).encode()
        for index in range(count)
    ]


async def _client(
    port: int, partner: _Partner, noops: int, bodies: Sequence[bytes], expect: int
) -> list[float]:
    """Send `noops` no-op GETs, else the CDR bodies; returns each request's seconds."""
    connection = await _Connection.open(port)
    timings: list[float] = []
    try:
        requests = [(_head("GET", NOOP_PATH, partner), b"")] * noops or [
            (_head("POST", CDRS_PATH, partner, len(body)), body) for body in bodies
        ]
        for head, body in requests:
            started = time.perf_counter()
            status, answer = await connection.request(head, body)
            timings.append(time.perf_counter() - started)
            if status != expect:
                raise BenchFailed(f"{partner.party}: HTTP {status}, expected {expect}: {answer!r}")
    finally:
        connection.close()
    return timings


async def _phase(
    port: int, partners: Sequence[_Partner], per_client: int, cdrs: dict[str, list[bytes]] | None
) -> tuple[float, list[float]]:
    """Every partner at once; returns the requests per second and every latency (s)."""
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            _client(
                port,
                p,
                0 if cdrs else per_client,
                cdrs[str(p.party)] if cdrs else [],
                201 if cdrs else 200,
            )
            for p in partners
        )
    )
    elapsed = time.perf_counter() - started
    latencies = [t for timings in results for t in timings]
    return len(latencies) / elapsed, latencies


def _register(database_url: str, clients: int) -> list[_Partner]:
    partners = []
    with connect(database_url) as conn:
        for index in range(clients):
            party = PartyRef(country_code="NL", party_id=f"{index:03d}")
            reference_store.add_partner(conn, party, PartnerRole.CPO, f"bench partner {index}")
            token = ocpi_tokens.issue(conn, party, ocpi_tokens.TokenKind.C)
            header = "Token " + base64.b64encode(token.encode()).decode()
            partners.append(_Partner(party, header))
        conn.commit()
    return partners


def _server(settings: Settings, port: int, home: Path, log: Path) -> subprocess.Popen[bytes]:
    assert settings.database_url and settings.kafka_bootstrap_servers
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
        "ROAMCLEAR_HOME": str(home),
        # the bench measures capacity: no partner is held back by its bucket
        "ROAMCLEAR_OCPI_REQUESTS_PER_S": "1000000",
        "ROAMCLEAR_OCPI_BURST": "1000000",
    }
    for name in [n for n in env if n.startswith("ROAMCLEAR_DATABASE_URL_")]:
        del env[name]  # the scratch database's roles, not the configured ones
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.bench.ingest_server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_WAIT_S_MAX
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchFailed(f"the API process exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchFailed(f"the API process did not listen within {START_WAIT_S_MAX} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT_S_MAX)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class _Measured:
    floor_per_s: float
    floor_cpu_s: float
    per_s: float
    cpu_s: float
    latencies: list[float]


async def _measure(port: int, pid: int, partners: list[_Partner], cdrs: int) -> _Measured:
    per_client = cdrs // len(partners)
    warm = {str(p.party): _cdr_bodies(p.party, 1, "WARM") for p in partners}
    await _phase(port, partners, 1, None)
    await _phase(port, partners, 1, warm)
    bodies = {str(p.party): _cdr_bodies(p.party, per_client, "BENCH") for p in partners}
    before = _cpu_s(pid)
    floor_per_s, _ = await _phase(port, partners, per_client, None)
    between = _cpu_s(pid)
    per_s, latencies = await _phase(port, partners, per_client, bodies)
    after = _cpu_s(pid)
    return _Measured(floor_per_s, between - before, per_s, after - between, latencies)


def run(settings: Settings, clients: int, cdrs: int) -> IngestBench:
    """`cdrs` is rounded down to a multiple of `clients` (each sends the same number)."""
    assert settings.database_url and settings.kafka_bootstrap_servers
    assert 1 <= clients <= CLIENTS_MAX and cdrs >= clients
    cdrs -= cdrs % clients
    import uvloop

    with (
        tempfile.TemporaryDirectory(prefix="roamclear-bench-ingest-") as tmp,
        scratch_database(settings.database_url) as database_url,
    ):
        bench = replace(
            settings, database_url=database_url, topic_prefix=f"bench{uuid.uuid4().hex[:8]}"
        )
        create_topics(settings.kafka_bootstrap_servers, topic_specs(bench.topic_prefix))
        partners = _register(database_url, clients)
        port, log = free_port(), Path(tmp) / "api.log"
        process = _server(bench, port, Path(tmp), log)
        try:
            _wait_ready(process, port, log)
            measured = uvloop.run(_measure(port, process.pid, partners, cdrs))
        finally:
            _stop(process)
        topic = topic_name(bench.topic_prefix, Topic.CDR_SUBMITTED)
        on_topic = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
        if on_topic != cdrs + clients:  # the warm-up CDRs too
            raise BenchFailed(f"the topic holds {on_topic} records, expected {cdrs + clients}")
    latencies = sorted(measured.latencies)
    return IngestBench(
        clients,
        cdrs,
        measured.per_s,
        statistics.median(latencies) * 1000,
        _percentile(latencies, 0.99) * 1000,
        measured.floor_per_s,
        measured.cpu_s / cdrs * 1e6,
        measured.floor_cpu_s / cdrs * 1e6,
    )
