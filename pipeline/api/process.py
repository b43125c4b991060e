"""Starting `roamclear api` as a process of its own from another command (the demo,
`simulate --via http`): on 127.0.0.1 and a free port, with the public URL partners are told
to call, ready once it answers HTTP, stopped with SIGTERM at the end.

    with api_process(settings, log_dir) as api:
        httpx.get(f"{api.url}/ocpi/versions", ...)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from pipeline.api.serving import free_port
from pipeline.config import Settings
from pipeline.workers import worker_env

READY_WAIT_S_MAX: Final = 60.0
STOP_WAIT_S_MAX: Final = 20.0


@dataclass(frozen=True, slots=True)
class ApiProcess:
    url: str  # http://127.0.0.1:<port>, also its ROAMCLEAR_PUBLIC_URL
    log: Path
    process: subprocess.Popen[bytes]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"roamclear api exited with {self.process.returncode}: {tail}")


@contextmanager
def api_process(settings: Settings, log_dir: Path) -> Iterator[ApiProcess]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = worker_env(settings, log_dir, f"api-{uuid.uuid4().hex[:8]}", ROAMCLEAR_PUBLIC_URL=url)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"api-{port}.log"
    command = [sys.executable, "-m", "pipeline.cli", "api", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    api = ApiProcess(url, log, process)
    try:
        _wait_ready(api)
        yield api
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_WAIT_S_MAX)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(api: ApiProcess) -> None:
    """Until the API answers: the versions endpoint refuses a call without a token (401)."""
    deadline = time.monotonic() + READY_WAIT_S_MAX
    while time.monotonic() < deadline:
        api.check_alive()
        try:
            httpx.get(f"{api.url}/ocpi/versions", timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"roamclear api did not answer on {api.url} in {READY_WAIT_S_MAX:.0f} s")
