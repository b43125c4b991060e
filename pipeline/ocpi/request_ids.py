"""`X-Request-ID` and `X-Correlation-ID` (OCPI 2.2.1, "Unique message IDs").

Every response carries the request's IDs, generated (uuid4) when the request had none, and
`request.state.request_id` / `correlation_id` hold them for whatever the request delivers
(the audit trail a dispute needs). A pure ASGI middleware: Starlette's BaseHTTPMiddleware
would cost a task and a copy of every body per request.
"""

from __future__ import annotations

import uuid
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: Final = "x-request-id"
CORRELATION_ID: Final = "x-correlation-id"
ID_CHARS_MAX: Final = 64


def _kept(value: bytes | None) -> str:
    """A sent ID if it is short printable ASCII, else a new one."""
    if value:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if 0 < len(text) <= ID_CHARS_MAX and text.isprintable():
            return text
    return str(uuid.uuid4())


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = _kept(headers.get(REQUEST_ID.encode()))
        correlation_id = _kept(headers.get(CORRELATION_ID.encode()))
        state = scope.setdefault("state", {})
        state["request_id"], state["correlation_id"] = request_id, correlation_id

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID.encode(), request_id.encode()),
                    (CORRELATION_ID.encode(), correlation_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_ids)
