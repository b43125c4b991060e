"""Migration 0013 links the CDRs decided before it exactly as clearing links them since:
its backfill query, run over a cleared batch, finds the rows clearing wrote."""

from __future__ import annotations

import asyncio

from pipeline.config import Settings
from settlement.store.db import connect
from settlement.store.migrate import MIGRATIONS_DIR
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    mixed_batch,
    register_reference_data,
    submit,
    topic_records,
)
from tests.integration.clearing.test_batch import _clear

MARK = "INSERT INTO cdr_session (archive_id, session_key, cdr_key)"


def _backfill_sql() -> tuple[str, str]:
    """The migration's helper function and its SELECT (without the INSERT)."""
    text = (MIGRATIONS_DIR / "0013_sessions.sql").read_text()
    function = text[text.index("CREATE FUNCTION pg_temp.envelope_json") : text.index(MARK)]
    select = text[text.index(MARK) + len(MARK) :].strip().rstrip(";")
    return function, select


def test_the_backfill_links_what_clearing_links(fresh_settings: Settings) -> None:
    settings = fresh_settings
    assert settings.database_url
    register_reference_data(settings)
    raw, _ = mixed_batch()
    submit(settings, raw)
    unproven = cdr_dict(2, id="CDR-UNPROVEN", session_id="SES-X")
    submit(settings, [(b"NL*TNM*CDR-UNPROVEN", envelope(unproven))], sign=False)
    asyncio.run(_clear(settings, topic_records(settings)))
    function, select = _backfill_sql()
    with connect(settings.database_url) as conn:
        written = conn.execute(
            "SELECT archive_id, session_key, cdr_key FROM cdr_session"
        ).fetchall()
        conn.execute(function)
        backfilled = conn.execute(select).fetchall()
    links = {tuple(row.values()) for row in written}
    assert {tuple(row.values()) for row in backfilled} == links
    assert len(links) >= 8 and all(key != "NL*TNM*SES-X" for _, key, _ in links)
