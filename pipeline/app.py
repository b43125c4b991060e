"""The faust-streaming application: one app, its topics from pipeline/topics.py, its agents.

`create_app(settings)` does no I/O; the worker command starts it. Configuration chosen for
the embedded broker's gaps and for Apache Kafka alike: topics are never declared by faust
(roamclear creates them up front), no leader topic, raw bytes in and out (decoding is ours,
with exact Decimals), short consumer sessions so rebalances take seconds, and no faust tables:
PostgreSQL is the only state, so a table recovered wrongly cannot corrupt the books.

The consumer is hardened (`pipeline.kafka.faust_driver.HardenedApp`): a record the Kafka
client cannot read (a header name that is not UTF-8, a corrupt batch) reaches the agent as
an unreadable message and is rejected like any bad input, instead of failing inside aiokafka
on every restart and stopping clearing for every partner.

An agent that raises (PostgreSQL or the broker gone) takes the worker down with it
(`CrashingSupervisor`). faust's default would restart the agent in place, past the batch it
could not commit: those events would stay unacked, never delivered again to this worker, and
the next rebalance would wait on them forever. A worker that exits instead is restarted by
its process supervisor, and the unacked events go to whichever worker takes the partitions.
"""

from __future__ import annotations

import faust
from mode import CrashingSupervisor

from pipeline.agents import clearing, passthrough, sessions
from pipeline.config import Settings
from pipeline.kafka.faust_driver import HardenedApp
from pipeline.topics import CDR_PARTITIONS, Topic, topic_name


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",")]


def faust_app(settings: Settings, app_id: str) -> faust.App:
    """A roamclear faust app (no agents yet) in consumer group `app_id`."""
    assert settings.kafka_bootstrap_servers is not None
    return HardenedApp(
        app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        value_serializer="raw",
        key_serializer="raw",
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=CDR_PARTITIONS,
        web_enabled=False,
        datadir=str(settings.home / "faust"),
        broker_session_timeout=settings.consumer_session_timeout_s,
        broker_heartbeat_interval=settings.consumer_heartbeat_interval_s,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        agent_supervisor=CrashingSupervisor,
    )


def create_app(settings: Settings, *, with_passthrough: str | None = None) -> faust.App:
    """The clearing app (the clearing agent on cdr.submitted, the session agent on
    session.events); `with_passthrough=TOPIC` instead forwards cdr.submitted to TOPIC
    unchanged (the baseline of `roamclear bench pipeline`)."""
    app = faust_app(
        settings,
        settings.app_id if with_passthrough is None else f"{settings.app_id}-passthrough",
    )
    submitted = app.topic(
        topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED),
        partitions=CDR_PARTITIONS,
        value_serializer="raw",
        key_serializer="raw",
    )
    if with_passthrough is None:
        clearing.register(app, settings, submitted)
        session_events = app.topic(
            topic_name(settings.topic_prefix, Topic.SESSION_EVENTS),
            partitions=CDR_PARTITIONS,
            value_serializer="raw",
            key_serializer="raw",
        )
        sessions.register(app, settings, session_events)
    else:
        passthrough.register(app, settings, submitted, with_passthrough)
    return app
