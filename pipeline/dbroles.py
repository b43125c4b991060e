"""Which PostgreSQL role each component connects as (least privilege; docs/security.md).

`DATABASE_URL` names the server, the database and an administrator that only migrates. Every
component connects as its own role, with the privileges settlement/store/migrations/
post-apply.sql grants it and no others:

    >>> settings = Settings.from_env({"DATABASE_URL": "postgresql://admin:s3cret@db:5432/hub"})
    >>> role_url(settings, DbRole.WORKER)
    'postgresql://roamclear_worker@db:5432/hub'

`ROAMCLEAR_DATABASE_URL_WORKER` (… `_CLOSER`, `_API`, `_READER`, `_OPERATOR`, `_DELIVERER`)
names another URL for a role: a managed PostgreSQL with passwords, a login user of another
name that is a member of the role.
"""

from __future__ import annotations

from enum import StrEnum

from pipeline.config import Settings
from settlement.store.urls import with_user


class DbRole(StrEnum):
    """A component's PostgreSQL role. The value is the role's name in the database."""

    WORKER = "roamclear_worker"  # clearing: reads reference data and the ledger, appends
    CLOSER = "roamclear_closer"  # settle close|run: appends runs, batches, rounding
    API = "roamclear_api"  # `roamclear api`: reads, appends what partners deliver over HTTP
    READER = "roamclear_reader"  # read-only commands: SELECT only
    OPERATOR = "roamclear_operator"  # reference data, keys, tokens, retries: appends only
    DELIVERER = "roamclear_deliverer"  # `roamclear deliver`: the CDR delivery ledger


def role_url(settings: Settings, role: DbRole) -> str:
    assert settings.database_url is not None, "resolve the servers first (devstack.resolve)"
    configured = dict(settings.role_database_urls).get(role.name)
    return configured or with_user(settings.database_url, role.value)
