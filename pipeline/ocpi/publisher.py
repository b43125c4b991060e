"""The API's producer for what the OCPI receivers publish after PostgreSQL committed it (the
compacted reference topics): one aiokafka producer per app, started on first use, so an
API that never receives a tariff never connects to the broker, and stopped with the app.

    publisher: TopicPublisher = request.app.state.topic_publisher
    await publisher.send(outgoing)          # returns once the broker acked every record

acks=all, as every roamclear producer (pipeline.kafka.client). A send that fails or takes
longer than `SEND_WAIT_S_MAX` raises `PublishFailed`: the version is in PostgreSQL already
(what clearing reads), and the receiver asks the partner to send again, which publishes it
once more.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.kafka.client import new_producer, send_records
from pipeline.reference import Outgoing
from pipeline.topics import topic_name

SEND_WAIT_S_MAX: Final = 10.0
START_WAIT_S_MAX: Final = 10.0

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """The broker did not acknowledge the records in time. The data is stored in PostgreSQL;
    the topic misses it until the partner sends it again (or an operator republishes)."""


class TopicPublisher:
    def __init__(self, bootstrap_servers: str | None, topic_prefix: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic_prefix = topic_prefix
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Lock | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._starting is None:  # made in the app's event loop, on first use
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                if not self._bootstrap_servers:
                    raise PublishFailed("no broker configured (KAFKA_BOOTSTRAP_SERVERS)")
                producer = new_producer(self._bootstrap_servers)
                try:
                    await asyncio.wait_for(producer.start(), START_WAIT_S_MAX)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise PublishFailed(f"cannot reach the broker: {exc!r}") from exc
                self._producer = producer
            return self._producer

    async def send(self, outgoing: Outgoing) -> None:
        """Send the records and wait for the broker's acks."""
        if not outgoing.records:
            return
        producer = await self._started()
        name = topic_name(self._topic_prefix, outgoing.topic)
        try:
            futures = await send_records(producer, [(name, k, v) for k, v in outgoing.records])
            await asyncio.wait_for(asyncio.gather(*futures), SEND_WAIT_S_MAX)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("publishing %d record(s) to %s: %r", len(outgoing.records), name, exc)
            raise PublishFailed(f"the broker did not acknowledge: {exc!r}") from exc

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
