"""`QuietRepeats`: aiokafka's retry loops log the same complaint ten times a second while a
broker is gone; the worker's log gets it once per period, then a count of what was held."""

from __future__ import annotations

import logging

import pytest

from pipeline.agents.liveness import QuietRepeats


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_repeated_complaint_passes_once_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("pipeline.agents.liveness.time.monotonic", lambda: now[0])
    quiet = QuietRepeats(period_s=30.0)
    template = "Unable connect to node with id %s: %s"
    passed = []
    for _ in range(600):  # a minute of one retry loop at 100 ms
        record = _record("aiokafka.client", template, 111, "Connection refused")
        if quiet.filter(record):
            passed.append(record.getMessage())
        now[0] += 0.1
    assert passed == [
        "Unable connect to node with id 111: Connection refused",
        "Unable connect to node with id 111: Connection refused (and 299 more like it before)",
    ]


def test_different_complaints_and_loggers_pass_on_their_own() -> None:
    quiet = QuietRepeats(period_s=30.0)
    assert quiet.filter(_record("aiokafka.client", "Unable to update metadata from %s", [1]))
    assert quiet.filter(
        _record("aiokafka.consumer.fetcher", "Unable to update metadata from %s", [1])
    )
    assert quiet.filter(_record("aiokafka.client", "Unable connect to node with id %s", 1))
    assert not quiet.filter(_record("aiokafka.client", "Unable connect to node with id %s", 2))
