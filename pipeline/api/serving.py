"""How `roamclear api` serves its app: uvicorn, httptools, and one write per answer.

uvicorn's httptools protocol writes an answer's status line and headers, then its body, as
two writes, and uvloop sends each at once: two system calls and two TCP segments per answer,
each waking the client. `OneWriteHttp` holds a connection's writes until the event loop's
current pass ends and sends them as one, so an answer whose handler has its whole body (every
JSON answer) goes out in one segment; a streamed answer still goes out as it is produced, a
pass of the loop later at most. `roamclear bench ingest` serves its app the same way.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

START_WAIT_S_MAX: Final = 20.0
STOP_WAIT_S_MAX: Final = 20.0


class _PassWrites:
    """A transport whose writes within one pass of the event loop go out as one write;
    everything else is the transport's own (closing sends what is held first)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def _flush(self) -> None:
        if self._held:
            held, self._held = self._held, []
            if not self._transport.is_closing():  # else lost as a write to it would be
                self._transport.write(b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, its writes gathered per pass of the loop."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # flow control keeps the transport itself
        self.transport = _PassWrites(transport, self.loop)  # type: ignore[assignment]


def server_config(
    app: Any,
    host: str,
    port: int,
    log_level: str,
    *,
    access_log: bool = True,
    log_config: dict[str, Any] | None = None,
) -> uvicorn.Config:
    """uvicorn's configuration for `app` (tests serve the app with it too); `log_config`
    replaces uvicorn's logging (pipeline.observe.logs.logging_config)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=OneWriteHttp,
        access_log=access_log,
        log_config=LOGGING_CONFIG if log_config is None else log_config,
    )


def serve(app: Any, host: str, port: int, log_level: str, **options: Any) -> None:
    """Run uvicorn on `app` until SIGTERM or SIGINT (`options`: server_config's)."""
    uvicorn.Server(server_config(app, host, port, log_level, **options)).run()


@contextmanager
def serving_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """`app` under uvicorn on 127.0.0.1 (`port`, else a free one) in a thread of this
    process, for as long as the block runs (tests, benchmarks, simulated partners' servers);
    yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, "warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_WAIT_S_MAX
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_WAIT_S_MAX)


def free_port() -> int:
    """A port nothing listens on (now) on 127.0.0.1: for a server to come, or for a test's
    server that never does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
