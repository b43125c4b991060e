"""The API's one producer for what the OCPI receivers accept, answered only once the broker
acknowledged it (acks=all):

    publisher: Publisher = request.app.state.publisher
    await publisher.publish(publisher.topic(Topic.SESSION_EVENTS), key, value)  # signed
    await publisher.send(outgoing)          # reference records (compacted topics), unsigned

Records for `cdr.submitted` and `session.events` carry the hub's proof (the submitter is the
token's partner); reference records go to the compacted topics as `tariffs publish` sends
them. The producer starts on the first use, not with the app: the finance API keeps serving
when the broker is down, and an OCPI push then answers 503 (or 3000 with its version stored)
instead of the app not starting. A send not acked within `SEND_WAIT_S_MAX` raises
`BrokerUnavailable`; the record may still reach the broker afterwards (it was handed to the
client), which is why everything the receivers produce is safe to receive twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.kafka.client import Signer, new_producer, send_records
from pipeline.reference import Outgoing
from pipeline.topics import Topic, topic_name

SEND_WAIT_S_MAX: Final = 10.0
START_WAIT_S_MAX: Final = 10.0
# Each request waits for its own record's ack, so lingering only adds latency: 5 ms (the
# client default) cost about 6.5 ms per push against the embedded broker, 0 about 0.7 ms
# (measured); records of concurrent requests still share a batch while one is in flight.
LINGER_MS: Final = 0

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not take the records in time (down, unreachable, or no broker
    configured). Nothing was acknowledged to the partner; the operator checks the broker
    (`roamclear dev status`, or the cluster's own monitoring)."""


class Publisher:
    def __init__(self, bootstrap_servers: str | None, prefix: str, sign: Signer) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix
        self.sign = sign
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Lock | None = None

    def topic(self, topic: Topic) -> str:
        return topic_name(self.prefix, topic)

    async def _started(self) -> AIOKafkaProducer:
        if self._starting is None:  # made in the app's event loop, on first use
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                if not self.bootstrap_servers:
                    raise BrokerUnavailable("no broker is configured (KAFKA_BOOTSTRAP_SERVERS)")
                producer = new_producer(self.bootstrap_servers, linger_ms=LINGER_MS)
                try:
                    await asyncio.wait_for(producer.start(), START_WAIT_S_MAX)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise BrokerUnavailable(f"cannot reach the broker: {exc!r}") from exc
                self._producer = producer
            return self._producer

    async def _send(
        self, records: Sequence[tuple[str, bytes | None, bytes]], sign: Signer | None
    ) -> None:
        try:
            producer = await self._started()
            futures = await send_records(producer, records, sign)
            await asyncio.wait_for(asyncio.gather(*futures), SEND_WAIT_S_MAX)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("publishing %d record(s): %r", len(records), exc)
            raise BrokerUnavailable(f"the broker did not acknowledge: {exc!r}") from exc

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one record signed with the hub's proof; return once it is acked."""
        await self._send([(topic, key, value)], self.sign)

    async def send(self, outgoing: Outgoing) -> None:
        """Reference records to their compacted topic; return once every one is acked."""
        if outgoing.records:
            name = self.topic(outgoing.topic)
            await self._send([(name, key, value) for key, value in outgoing.records], None)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
