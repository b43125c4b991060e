"""Which session each CDR belongs to (table cdr_session, migration 0013), written by the
clearing agent in the transaction that decides the CDR.

A CDR names its session by `session_id` under its own country code and party id (OCPI 2.2.1
mod_cdrs: "Unique ID of the Session for which this CDR is sent"), so the link is
`NL*TNM*SES-0001` → `NL*TNM*CDR-0001`. The missing-CDR report finds a session's CDRs through
this table's index instead of parsing every archived CDR, and the CDR's outcome (booked,
duplicate or rejected) through cdr_outcome.

Only what clearing could read and attribute is linked: a decoded CDR with a `session_id`,
from a proven submitter that owns it. A forged or foreign record never makes a session look
served.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import psycopg

from schemas.hub.party import SEPARATOR
from settlement.clearing.decode import Decoded
from settlement.clearing.outcome import Rejected
from settlement.store.clearing_store import copy_rows
from settlement.store.db import Row

LINK_COLUMNS: Final = ("archive_id", "session_key", "cdr_key")


def link_rows(
    decided: Iterable[tuple[int, Decoded | Rejected, str | None]],
) -> list[tuple[Any, ...]]:
    """(archive id, decoded item, proof key) → cdr_session rows."""
    rows: list[tuple[Any, ...]] = []
    for archive_id, item, proof in decided:
        if proof is None or not isinstance(item, Decoded):
            continue
        cdr = item.cdr
        owner = f"{cdr.country_code}{SEPARATOR}{cdr.party_id}".upper()
        # plain text, not PartyRef and CdrKey models: thousands per batch on the hot path
        if not cdr.session_id or owner != str(item.submitter):
            continue
        session = f"{owner}{SEPARATOR}{cdr.session_id.upper()}"
        rows.append((archive_id, session, f"{owner}{SEPARATOR}{cdr.id.upper()}"))
    return rows


async def link(conn: psycopg.AsyncConnection[Row], rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await copy_rows(conn, "cdr_session", LINK_COLUMNS, rows)
