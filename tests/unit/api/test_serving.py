"""`_PassWrites`: a connection's writes within one pass of the event loop go out as one."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.api.serving import _PassWrites


class RecordingTransport:
    """Our seam's fake: what reached the transport, and when it was closed."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.events.append(data)

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


def test_writes_of_one_pass_go_out_as_one_and_the_next_pass_as_another() -> None:
    async def scenario() -> list[Any]:
        transport = RecordingTransport()
        writes = _PassWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writes.write(b"{}")
        assert transport.events == []  # held until the pass ends
        await asyncio.sleep(0)
        writes.write(b"next")
        await asyncio.sleep(0)
        return transport.events

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", b"next"]


def test_close_sends_what_is_held_first_and_nothing_goes_to_a_closed_transport() -> None:
    async def scenario() -> list[Any]:
        transport = RecordingTransport()
        writes = _PassWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"answer")
        writes.close()
        writes.write(b"after close")
        await asyncio.sleep(0)
        return transport.events

    assert asyncio.run(scenario()) == [b"answer", "close"]


def test_everything_else_is_the_transports_own() -> None:
    async def scenario() -> str:
        transport = RecordingTransport()
        writes = _PassWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        return str(writes.get_extra_info("peername"))

    assert asyncio.run(scenario()) == "info peername"
