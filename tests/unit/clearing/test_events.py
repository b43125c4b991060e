"""The clearing agent's envelopes, written from a batch's shared head and one payload, are
the bytes `envelope_bytes` (and so `to_ocpi_json(new_envelope(...))`) writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final
from uuid import UUID

import pytest

from pipeline.clearing.events import EventWriter, _envelope
from schemas.events import CdrRated, LedgerTransaction, envelope_bytes
from schemas.hub.party import PartyRef

HUB: Final = PartyRef(country_code="NL", party_id="HUB")
EVENT_ID: Final = re.compile(rb'^\{"event_id":"([0-9a-f-]{36})"')


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 4, 1, 6, tzinfo=UTC),
        datetime(2026, 4, 1, 6, 0, 0, 250_000, tzinfo=UTC),
        datetime(2026, 4, 1, 8, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_envelopes_from_the_shared_head_are_envelope_bytes(now: datetime) -> None:
    writer = EventWriter("test", HUB)
    payload = {"cdr_key": "NL*TNM*1", "amount": "1.50", "periods": [{"index": 0}]}
    for head, envelope in zip(
        writer._envelope_heads(now), (CdrRated, LedgerTransaction), strict=True
    ):
        written = _envelope(head, payload)
        found = EVENT_ID.match(written)
        assert found is not None
        expected = envelope_bytes(
            envelope,
            submitter=HUB,
            payload=payload,
            occurred_at=now,
            event_id=UUID(found.group(1).decode()),
        )
        assert written == expected
    later = now + timedelta(seconds=1)
    heads = writer._envelope_heads(now)
    assert writer._envelope_heads(later) != heads  # a new batch time, a new head
