"""A real uvicorn serving an app on 127.0.0.1 and a free port, for as long as a test needs.

`free_port` is re-exported for the tests that need a port nothing listens on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from pipeline.api.app import create_app
from pipeline.api.serving import free_port, server_config
from pipeline.config import Settings

START_WAIT_S_MAX = 20
__all__ = ["free_port", "serve", "serve_app"]


@contextmanager
def serve_app(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Yields the server's base URL; stops it at exit."""
    port = port or free_port()
    config = server_config(app, "127.0.0.1", port, "warning")  # as `roamclear api` serves
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_WAIT_S_MAX
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped while starting"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def serve(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The hub's API (`roamclear api`'s app) for `settings`."""
    with serve_app(create_app(settings), port) as url:
        yield url
