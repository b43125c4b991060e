"""`roamclear api`'s uvicorn (pipeline.api.serving) on a real socket: every answer whole and
in order on a keep-alive connection, a JSON answer in one write, a streamed one as produced,
and `Connection: close` honoured after the answer."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from pipeline.api import serving
from tests.integration.settlement.http import serve_app

pytestmark = pytest.mark.integration
WRITES: list[bytes] = []


class _Recorder:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RecordingHttp(serving.OneWriteHttp):
    """The protocol under test over a transport that records what reaches the socket."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recorder(transport))  # type: ignore[arg-type]


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _read_answer(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "the connection closed before an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head:
        while not body.endswith(b"0\r\n\r\n"):
            body += conn.recv(65536)
        return head, body
    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += conn.recv(65536)
    return head, body


def test_answers_are_whole_in_order_and_one_write_each(monkeypatch: Any) -> None:
    monkeypatch.setattr(serving, "OneWriteHttp", _RecordingHttp)
    WRITES.clear()
    with serve_app(_app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as conn:
            for path in ("/first", "/second", "/third"):
                conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head, body = _read_answer(conn)
                assert head.startswith(b"HTTP/1.1 200") and body == path.encode()
            json_writes = list(WRITES)
            conn.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            _, streamed = _read_answer(conn)
            conn.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head, body = _read_answer(conn)
            assert body == b"/last" and b"connection: close" in head
            assert conn.recv(65536) == b""  # closed by the server after the answer
    # status line, headers and body of each answer in one write
    assert len(json_writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200") and w.endswith(p) for w, p in
               zip(json_writes, (b"/first", b"/second", b"/third"), strict=True))  # fmt: skip
    assert streamed == b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n"
