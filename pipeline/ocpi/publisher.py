"""Producing what the OCPI receivers accept: one record at a time, with the hub's proof, and
answered only once the broker acknowledged it (acks=all).

    publisher = Publisher(bootstrap_servers, "roamclear", hub_signer(settings))
    await publisher.publish(publisher.topic(Topic.SESSION_EVENTS), key, value)  # acked here

The producer starts on the first publish, not with the app: the finance API keeps serving
when the broker is down, and an OCPI push then answers 503 instead of the app not starting.
A publish that is not acked within `PUBLISH_WAIT_S_MAX` raises `BrokerUnavailable`; the
record may still reach the broker afterwards (it was handed to the client), which is why
every event the receivers produce is safe to receive twice.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.kafka.client import Signer, new_producer, send_records
from pipeline.topics import Topic, topic_name

PUBLISH_WAIT_S_MAX: Final = 10.0
START_WAIT_S_MAX: Final = 10.0
# Each request waits for its own record's ack, so lingering only adds latency: 5 ms (the
# client default) cost about 6.5 ms per push against the embedded broker, 0 about 0.7 ms
# (measured); records of concurrent requests still share a batch while one is in flight.
LINGER_MS: Final = 0


class BrokerUnavailable(Exception):
    """The broker did not take the record in time (down, unreachable, or no broker
    configured). Nothing was acknowledged to the partner; the operator checks the broker
    (`roamclear dev status`, or the cluster's own monitoring)."""


class Publisher:
    def __init__(self, bootstrap_servers: str | None, prefix: str, sign: Signer) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix
        self.sign = sign
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    def topic(self, topic: Topic) -> str:
        return topic_name(self.prefix, topic)

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                if self.bootstrap_servers is None:
                    raise BrokerUnavailable("no broker is configured (KAFKA_BOOTSTRAP_SERVERS)")
                producer = new_producer(self.bootstrap_servers, linger_ms=LINGER_MS)
                try:
                    await asyncio.wait_for(producer.start(), START_WAIT_S_MAX)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one record signed with the hub's proof; return once it is acked."""
        try:
            producer = await self._started()
            futures = await send_records(producer, [(topic, key, value)], self.sign)
            await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_WAIT_S_MAX)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"the broker did not acknowledge the event: {exc!r}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
