"""Sending a scenario to the hub: reference data first, then the CDR stream to Kafka.

The stream goes through one producer, at an optional target rate, with a progress callback;
what was sent is counted by category so the books can be checked against it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable

from pipeline import reference
from pipeline.config import Settings
from pipeline.kafka.client import new_producer
from pipeline.simulate.generator import Submission
from pipeline.simulate.reference import ReferenceData
from pipeline.topics import Topic, topic_name

IN_FLIGHT_MAX = 5_000  # sends awaiting their ack before we wait (bounds memory)


def register(settings: Settings, data: ReferenceData) -> None:
    reference.add_partners(settings, [(p.party, p.role.value, p.name) for p in data.partners])
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
    producer = new_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    sent: Counter[str] = Counter()
    started = time.monotonic()
    pending: list[asyncio.Future[object]] = []
    try:
        for index, submission in enumerate(submissions):
            if rate_per_s:
                ahead = index / rate_per_s - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            pending.append(await producer.send(topic, value=submission.value, key=submission.key))
            sent[submission.category.value] += 1
            if len(pending) >= IN_FLIGHT_MAX:
                await asyncio.gather(*pending)
                progress(len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        progress(len(pending))
    finally:
        await producer.stop()
    return sent
