"""faust's aiokafka driver with a hardened consumer: a record aiokafka cannot read reaches the
agent as an `UnreadableMessage` (its raw bytes and why) instead of stopping the worker.

`HardenedApp` is a faust.App whose transport is `HardenedTransport`; its consumer thread
hardens the aiokafka consumer it starts (`pipeline.kafka.hardened.harden`), and its
`_to_message` turns a record recovered with `unreadable` set into an `UnreadableMessage`, the
one thing the agent looks at. Nothing is patched: the classes are faust's own, subclassed,
and chosen when the app makes its transport (lazily, at the worker's start).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.transports import TransportT
from faust.types.tuples import ConsumerMessage

from pipeline.kafka.hardened import harden
from pipeline.kafka.rawbatch import RecoveredRecord


class UnreadableMessage(ConsumerMessage):
    """A message aiokafka could not read: `unreadable` says why; key, value and headers hold
    what could be read of it (the value may be the raw bytes of its whole batch)."""

    __slots__ = ("unreadable",)

    def __init__(self, *args: Any, unreadable: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unreadable = unreadable


class _HardenedConsumerThread(driver.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()  # creates and starts the aiokafka consumer
        assert self._consumer is not None
        harden(self._consumer)


class HardenedConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _HardenedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        message = super()._to_message(tp, record)
        if not isinstance(record, RecoveredRecord) or record.unreadable is None:
            return message
        return UnreadableMessage(
            message.topic,
            message.partition,
            message.offset,
            message.timestamp,
            message.timestamp_type,
            message.headers,
            message.key,
            message.value,
            message.checksum,
            message.serialized_key_size,
            message.serialized_value_size,
            message.tp,
            generation_id=message.generation_id,
            unreadable=record.unreadable,
        )


class HardenedTransport(driver.Transport):
    Consumer = HardenedConsumer


class HardenedApp(faust.App):
    """A faust app whose consumer survives records aiokafka cannot read."""

    def _new_transport(self) -> TransportT:
        return HardenedTransport(self.conf.broker_consumer, self)
