"""What the docs say about ``roamclear api`` is what it does."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pipeline.api.cli import api

ROOT = Path(__file__).resolve().parents[3]


def test_the_documented_port_is_the_default_port() -> None:
    default = inspect.signature(api).parameters["port"].default
    for doc in ("README.md", "docs/settlement.md"):
        ports = re.findall(r"roamclear api \[--port (\d+)\]", (ROOT / doc).read_text())
        assert ports and {int(port) for port in ports} == {default}, doc
