"""The passthrough baseline: forwards cdr.submitted records unchanged, in the same batches
and through the same producer path as clearing, so `bench pipeline` shows what clearing
itself costs."""

from __future__ import annotations

from typing import cast

import faust

from pipeline.clearing.batch import send_with
from pipeline.clearing.events import OutputRecord
from pipeline.config import Settings
from pipeline.kafka.client import new_producer


def register(app: faust.App, settings: Settings, submitted: faust.TopicT, target: str) -> None:
    @app.agent(submitted, name="passthrough")
    async def passthrough(stream: faust.StreamT[bytes]) -> None:
        assert settings.kafka_bootstrap_servers is not None
        producer = new_producer(settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            async for events in cast(faust.Stream[bytes], stream).take_events(
                settings.clearing_batch_max, within=settings.clearing_batch_within_s
            ):
                await send_with(
                    producer,
                    [
                        OutputRecord(target, e.message.key or b"", e.message.value or b"")
                        for e in events
                    ],
                )
        finally:
            await producer.stop()
