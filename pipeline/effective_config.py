"""The effective configuration, as `roamclear config show` prints it: every `Settings` field
with the variable it is read from and its value as text, secrets masked.

Masking is the log redactor's (pipeline.observe.logs.Redactor with `secrets_of(settings)`),
so what a log line would hide is hidden here too: the hub key and retired hub keys, the
password of DATABASE_URL and of every role URL (and any `password=` parameter).

    DATABASE_URL                    postgresql://roamclear_worker:***@db:5432/roamclear
    ROAMCLEAR_HUB_KEY               ***
    ROAMCLEAR_SETTLEMENT_GRACE      3600s
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Final

from pipeline.config import Settings, variable_of
from pipeline.observe.logs import Redactor, secrets_of
from settlement.store.urls import MASK

ROLE_URLS: Final = "role_database_urls"  # shown as one line per role
# secrets by nature, masked whole whatever their length (the redactor leaves literal secrets
# shorter than SECRET_CHARS_MIN alone, since in a log line they would mask ordinary words)
SECRET_FIELDS: Final = frozenset({"hub_key", "hub_keys_previous"})


@dataclass(frozen=True, slots=True)
class Entry:
    setting: str  # the Settings field (role URLs: role_database_urls.WORKER)
    variable: str
    value: str | None  # None: unset (a server: the embedded one)


def effective(settings: Settings) -> list[Entry]:
    redactor = Redactor(secrets_of(settings))
    entries = []
    for field in fields(settings):
        value = getattr(settings, field.name)
        if field.name == ROLE_URLS:
            entries += [
                Entry(f"{ROLE_URLS}.{role}", f"ROAMCLEAR_DATABASE_URL_{role}", redactor.redact(url))
                for role, url in value
            ]
            continue
        text = _text(value)
        shown: str | None
        if not text:  # unset (None) or empty: nothing to mask
            shown = text
        elif field.name in SECRET_FIELDS:
            shown = MASK
        else:
            shown = redactor.redact(text)
        entries.append(Entry(field.name, variable_of(field.name), shown))
    return entries


def _text(value: object) -> str | None:
    """A value as its variable would hold it."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)
