"""Sending a scenario to the hub: reference data first, then the CDR stream to Kafka.

The stream goes through one producer, at an optional target rate, with a progress callback;
what was sent is counted by category so the books can be checked against it. Every record
carries the hub's proof (the simulator stands in for partners the hub authenticated), except
the forged ones, which stand in for a bare Kafka client writing in a CPO's name.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from pipeline import reference
from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import Signer, new_producer, send_records
from pipeline.simulate.generator import Submission
from pipeline.simulate.reference import ReferenceData
from pipeline.topics import Topic, topic_name

IN_FLIGHT_MAX = 5_000  # records awaiting their ack before we wait (bounds memory)
CHUNK_MAX = 1_000  # records handed to the producer at once


def register(settings: Settings, data: ReferenceData) -> None:
    reference.add_partners(settings, [(p.party, p.role, p.name) for p in data.partners])
    reference.publish_tariffs(settings, data.tariffs)
    reference.publish_locations(settings, data.locations)
    reference.publish_agreements(settings, data.agreements)


async def send_stream(
    settings: Settings,
    submissions: Iterable[Submission],
    rate_per_s: float | None = None,
    progress: Callable[[int], None] = lambda _: None,
) -> Counter[str]:
    """Produce every submission to cdr.submitted; returns the counts by category."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    sign = hub_signer(settings)
    producer = new_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    sent: Counter[str] = Counter()
    # with a target rate, chunks of a twentieth of a second keep the pace smooth
    chunk_size = CHUNK_MAX if not rate_per_s else max(1, min(CHUNK_MAX, int(rate_per_s / 20)))
    started = time.monotonic()
    in_flight: list[tuple[int, list[asyncio.Future[object]]]] = []
    index = 0
    try:
        for chunk in _chunks(submissions, chunk_size):
            if rate_per_s:
                ahead = index / rate_per_s - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            records = [(topic, s.key, s.value) for s in chunk]
            forged = {s.value for s in chunk if not s.signed}
            chunk_sign = sign if not forged else _unless(forged, sign)
            in_flight.append((len(chunk), await send_records(producer, records, chunk_sign)))
            sent.update(s.category.value for s in chunk)
            index += len(chunk)
            while sum(n for n, _ in in_flight) > IN_FLIGHT_MAX:
                await _acked(in_flight.pop(0), progress)
        while in_flight:
            await _acked(in_flight.pop(0), progress)
    finally:
        await producer.stop()
    return sent


def _unless(forged: set[bytes], sign: Signer) -> Signer:
    """`sign`, except for the forged records' values: those go without a proof."""

    def sign_genuine(topic: str, value: bytes) -> list[tuple[str, bytes]]:
        return [] if value in forged else sign(topic, value)

    return sign_genuine


def _chunks(items: Iterable[Submission], size: int) -> Iterator[list[Submission]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def _acked(
    chunk: tuple[int, list[asyncio.Future[object]]], progress: Callable[[int], None]
) -> None:
    count, futures = chunk
    await asyncio.gather(*futures)
    progress(count)
