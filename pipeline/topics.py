"""Every Kafka topic roamclear uses, with its partition count and configs (the contract).

Names are `<prefix>.<entity>.<event>` with prefix `roamclear` by default. CDR-keyed topics
share one partition count so that a canonical CDR key lands on the same partition number in
each of them. Reference-data topics are compacted (the latest version per key is what a
reader needs; PostgreSQL keeps the full history).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CDR_PARTITIONS = 8
REFERENCE_PARTITIONS = 1
REJECTED_PARTITIONS = 4

_COMPACTED = (("cleanup.policy", "compact"),)


class Topic(StrEnum):
    """The entity.event part of each topic name."""

    CDR_SUBMITTED = "cdr.submitted"  # public: partners produce OCPI CDRs here
    CDR_RATED = "cdr.rated"  # every priced CDR with its breakdown and tariff version
    LEDGER_TRANSACTIONS = "ledger.transactions"  # balanced transactions for the ledger sink
    REJECTED = "rejected"  # dead letters: reason code, stage, original payload
    TARIFF_PUBLISHED = "tariff.published"  # CPO tariffs, keyed by tariff key
    AGREEMENT_PUBLISHED = "agreement.published"  # roaming agreements, keyed by agreement id
    LOCATION_PUBLISHED = "location.published"  # OCPI locations (for their time zone)
    SESSION_EVENTS = "session.events"  # OCPI sessions, keyed by session id


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    configs: tuple[tuple[str, str], ...] = ()
    replication_factor: int = 1


_LAYOUT: dict[Topic, tuple[int, tuple[tuple[str, str], ...]]] = {
    Topic.CDR_SUBMITTED: (CDR_PARTITIONS, ()),
    Topic.CDR_RATED: (CDR_PARTITIONS, ()),
    Topic.LEDGER_TRANSACTIONS: (CDR_PARTITIONS, ()),
    Topic.REJECTED: (REJECTED_PARTITIONS, ()),
    Topic.TARIFF_PUBLISHED: (REFERENCE_PARTITIONS, _COMPACTED),
    Topic.AGREEMENT_PUBLISHED: (REFERENCE_PARTITIONS, _COMPACTED),
    Topic.LOCATION_PUBLISHED: (REFERENCE_PARTITIONS, _COMPACTED),
    Topic.SESSION_EVENTS: (CDR_PARTITIONS, ()),
}


def topic_name(prefix: str, topic: Topic) -> str:
    return f"{prefix}.{topic.value}"


def topic_specs(
    prefix: str, replication_factor: int = 1, cdr_partitions: int = CDR_PARTITIONS
) -> list[TopicSpec]:
    """Every topic's spec; `cdr_partitions` other than CDR_PARTITIONS gives the CDR-keyed
    topics another count (all of them alike, so keys stay co-partitioned): the scale-out
    test runs more workers than CDR_PARTITIONS. Workers read the count from the broker.

    >>> {s.name: s.partitions for s in topic_specs("p", cdr_partitions=12)}["p.cdr.rated"]
    12
    >>> {s.name: s.partitions for s in topic_specs("p", cdr_partitions=12)}["p.rejected"]
    4
    """
    return [
        TopicSpec(
            name=topic_name(prefix, topic),
            partitions=cdr_partitions if partitions == CDR_PARTITIONS else partitions,
            configs=configs,
            replication_factor=replication_factor,
        )
        for topic, (partitions, configs) in _LAYOUT.items()
    ]
