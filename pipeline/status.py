"""`roamclear status`'s gathering: the clearing group's lag per partition from the broker
(pipeline.kafka.lag: committed offsets by OffsetFetch, high watermarks from fetches) and the
rest from PostgreSQL in one read-only transaction (settlement.store.status)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.kafka.lag import PartitionLag, group_lag
from pipeline.topics import Topic, topic_name
from settlement.store.db import connect
from settlement.store.status import StoreStatus, read_status

# the topics the clearing workers' consumer group (Settings.app_id) reads
CLEARING_TOPICS = (Topic.CDR_SUBMITTED, Topic.SESSION_EVENTS)


@dataclass(frozen=True, slots=True)
class OpsStatus:
    group: str
    lags: tuple[PartitionLag, ...]
    store: StoreStatus

    def as_json(self) -> dict[str, Any]:
        return {
            "consumer_group": self.group,
            "lag": [lag.as_json() for lag in self.lags],
            "lag_total": sum(lag.records for lag in self.lags),
            **self.store.as_json(),
        }


def current_status(settings: Settings, now: datetime | None = None) -> OpsStatus:
    assert settings.kafka_bootstrap_servers is not None
    topics = [topic_name(settings.topic_prefix, topic) for topic in CLEARING_TOPICS]
    lags = asyncio.run(group_lag(settings.kafka_bootstrap_servers, settings.app_id, topics))
    submitted = topics[0]
    in_topic = sum(lag.high_watermark for lag in lags if lag.topic == submitted)
    with connect(role_url(settings, DbRole.READER)) as conn:
        store = read_status(
            conn, now or datetime.now(UTC), submitted, in_topic, settings.session_stale_h
        )
    return OpsStatus(settings.app_id, tuple(lags), store)
