"""A real uvicorn serving an app on 127.0.0.1 and a free port, for as long as a test needs.

`free_port` is re-exported for the tests that need a port nothing listens on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from starlette.types import ASGIApp

from pipeline.api.app import create_app
from pipeline.api.serving import free_port, serving_in_thread
from pipeline.config import Settings

__all__ = ["free_port", "serve", "serve_app"]


def serve_app(app: ASGIApp, port: int | None = None) -> AbstractContextManager[str]:
    """Yields the server's base URL; stops it at exit."""
    return serving_in_thread(app, port)


@contextmanager
def serve(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The hub's API (`roamclear api`'s app) for `settings`."""
    with serve_app(create_app(settings), port) as url:
        yield url
