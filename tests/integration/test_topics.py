"""Topics are created up front with their final partition counts and configs."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.kafka.admin import create_topics
from pipeline.topics import CDR_PARTITIONS, Topic, topic_name, topic_specs

pytestmark = pytest.mark.integration


async def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


def test_every_topic_has_its_partition_count(kafka_bootstrap: str, topic_prefix: str) -> None:
    specs = topic_specs(topic_prefix)
    counts = asyncio.run(_partition_counts(kafka_bootstrap, [spec.name for spec in specs]))
    assert counts == {spec.name: spec.partitions for spec in specs}
    assert counts[topic_name(topic_prefix, Topic.CDR_SUBMITTED)] == CDR_PARTITIONS


def test_creating_again_is_a_no_op(kafka_bootstrap: str, topic_prefix: str) -> None:
    assert create_topics(kafka_bootstrap, topic_specs(topic_prefix)) == []
