"""The periodic closer's own HTTP endpoint (`roamclear settle run --metrics-port N`):
/metrics, /health and /ready, served from a daemon thread (the closer's loop is synchronous).

- /health: 200 while the process runs (the thread answers).
- /ready: 200 when the last close finished (closed batches or had nothing to close), 503
  before the first close finished or after one failed, with why (`CloserHealth`).
- /metrics: pipeline.observe.metrics.CLOSER and the process's own metrics.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pipeline.observe.metrics import CLOSER, exposition

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class CloserHealth:
    """What the last close did, for /ready (written by the closer's loop only)."""

    ready: bool = False
    reason: str = "no close finished yet"

    def closed(self, batches: int) -> None:
        self.ready, self.reason = True, f"last close: {batches} batches closed"

    def failed(self, why: str) -> None:
        self.ready, self.reason = False, f"last close failed: {why}"


def closer_app(health: CloserHealth) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [exposition(CLOSER)]
        if path == "/health":
            return _json(start_response, 200, {"status": "up"})
        if path == "/ready":
            body = {"ready": health.ready, "reason": health.reason}
            return _json(start_response, 200 if health.ready else 503, body)
        return _json(start_response, 404, {"error": f"no {path} here: /metrics, /health, /ready"})

    return app


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    phrases = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
    start_response(f"{status} {phrases[status]}", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds the process at exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds: no access log line for each."""


def serve_closer(host: str, port: int, health: CloserHealth) -> WSGIServer:
    """Serves in a daemon thread until the process ends (or `.shutdown()`)."""
    server = make_server(
        host, port, closer_app(health), server_class=_Server, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="closer-metrics", daemon=True).start()
    return server
