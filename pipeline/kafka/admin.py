"""Broker administration: wait for a broker, create roamclear's topics up front.

Topics are created explicitly with their final partition counts because the embedded broker
auto-creates any topic a client names (with 4 partitions) and cannot add partitions later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from pipeline.topics import TopicSpec

REQUEST_TIMEOUT_MS = 5_000


class BrokerUnavailable(RuntimeError):
    """No broker answered a metadata request at the bootstrap address in time."""


async def _describe_cluster(bootstrap_servers: str) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


def wait_for_broker(bootstrap_servers: str, timeout_s: float = 30.0) -> None:
    """Return once the broker answers a metadata request."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            asyncio.run(_describe_cluster(bootstrap_servers))
            return
        except (KafkaError, OSError) as exc:
            last_error = exc
            time.sleep(0.2)
    raise BrokerUnavailable(
        f"no Kafka broker answered at {bootstrap_servers} within {timeout_s:.0f} s: {last_error}"
    )


async def create_topics_async(bootstrap_servers: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the missing topics; returns the names created (existing ones are kept)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        if not wanted:
            return []
        new_topics = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=dict(spec.configs),
            )
            for spec in wanted
        ]
        # another process may win the race; the topic then exists, which is all we need
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new_topics)
        return [spec.name for spec in wanted]
    finally:
        await admin.close()


def create_topics(bootstrap_servers: str, specs: Iterable[TopicSpec]) -> list[str]:
    try:
        return asyncio.run(create_topics_async(bootstrap_servers, list(specs)))
    except KafkaConnectionError as exc:
        raise BrokerUnavailable(f"cannot reach the broker at {bootstrap_servers}: {exc}") from exc


async def list_topics_async(bootstrap_servers: str) -> list[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()
