"""Log lines for people or for machines, never with a secret in them.

`ROAMCLEAR_LOG_FORMAT=json` (Settings.log_format) gives one JSON object per line:

    {"timestamp": "2026-12-03T20:01:02.345Z", "level": "INFO", "logger": "roamclear.clearing",
     "message": "batch …", "topic": "roamclear.cdr.submitted", "partition": 3, "offset": 812}

`topic`, `partition`, `offset` and `key` appear when the line is about a record (the caller
passes them with `extra=record_fields(...)`). The default, `text`, stays a human-readable line.

Whatever the format, `Redactor` runs on every line before it is written: the password of any
URL (`postgresql://user:***@host/db`), `password=` parameters, `Authorization: Token …`
values, and the literal secrets of the process's settings (the hub key and retired keys, the
passwords of DATABASE_URL and of every role URL) become `***`. It is a handler filter, so it
sees the lines of every library that logs through the root logger (faust, aiokafka, uvicorn).
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from pipeline.config import Settings
from settlement.store.urls import MASK

TEXT_FORMAT: Final = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
RECORD_FIELDS: Final = ("topic", "partition", "offset", "key")
# a secret shorter than this is not replaced literally (it would mask ordinary words)
SECRET_CHARS_MIN: Final = 6

_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
_PASSWORD_PARAMETER = re.compile(r"(?i)(\bpassword\s*[=:]\s*)('(?:[^'\\]|\\.)*'|[^&\s,;]+)")
_TOKEN = re.compile(r"(?i)(\b(?:Token|Bearer)\s+)[A-Za-z0-9+/=._~-]{4,}")


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """The literal secrets `settings` holds: hub keys and every database password."""
    found = [settings.hub_key or "", *settings.hub_keys_previous]
    urls = [settings.database_url or "", *(url for _, url in settings.role_database_urls)]
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:  # a URL that does not parse has nothing urlsplit can find
            password = None
        found.append(password or "")
    return tuple(sorted({s for s in found if len(s) >= SECRET_CHARS_MIN}, key=len, reverse=True))


class Redactor(logging.Filter):
    """Replaces secrets in a record's message, exception and stack text (never drops it)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
        text = _PASSWORD_PARAMETER.sub(rf"\1{MASK}", text)
        return _TOKEN.sub(rf"\1{MASK}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name in RECORD_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in RECORD_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = _plain(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def _plain(value: object) -> object:
    """A record key as text (Kafka keys are bytes; undecodable bytes as escapes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def record_fields(
    topic: str, partition: int, offset: int, key: bytes | None = None
) -> dict[str, Any]:
    """The `extra=` of a log line about one record (or the first record of a batch)."""
    fields: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
    if key is not None:
        fields["key"] = key
    return fields


def logging_config(settings: Settings, level: str | int) -> dict[str, Any]:
    """A `logging.config.dictConfig` for this process: one handler on the root logger, in
    the configured format, with the redactor (faust's worker takes it as `logging_config`)."""
    formatter: Mapping[str, Any] = (
        {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": Redactor, "secrets": secrets_of(settings)}},
        "formatters": {"default": dict(formatter)},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": sys.stderr,
                "formatter": "default",
                "filters": ["redact"],
            }
        },
        "root": {"level": _level(level), "handlers": ["default"]},
        # uvicorn's own loggers pass their lines to ours instead of printing them, at the
        # root's level unless uvicorn is given one (an earlier server may have set another)
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": "NOTSET"}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(settings: Settings, level: str | int = "INFO") -> None:
    logging.config.dictConfig(logging_config(settings, level))


def _level(level: str | int) -> int | str:
    """faust's level names (`warn`, `crit`) as logging's."""
    if isinstance(level, int):
        return level
    names = {"warn": "WARNING", "crit": "CRITICAL"}
    return names.get(level.lower(), level.upper())
