"""`roamclear rejected list|retry`: the dead letters, and re-submitting after a fix."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, error_console, print_json
from pipeline.kafka.client import produce
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.ocpi.types import format_datetime
from schemas.wire import encode_json
from settlement.clearing.reasons import RETRYABLE, Reason
from settlement.store import books
from settlement.store.db import connect

app = typer.Typer(help="Rejected events: why, and re-submitting them once the cause is fixed.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable")]


@app.command("list")
def list_(
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
    partner: Annotated[str | None, typer.Option(help="only this submitter, e.g. NL*TNM")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 1000,
    json_output: JsonOpt = False,
) -> None:
    """List rejections with their reason codes."""
    settings = live_settings()
    assert settings.database_url is not None
    with connect(settings.database_url) as conn:
        rows = books.rejections(conn, reason, partner and partner.upper(), limit)
    if json_output:
        print_json(rows)
        return
    table = Table("id", "reason", "stage", "submitter", "CDR", "message", "retries")
    for row in rows:
        table.add_row(
            str(row["rejection_id"]),
            row["reason_code"],
            row["stage"],
            row["submitter"] or "-",
            row["cdr_key"] or "-",
            row["message"][:90],
            str(row["retries"]),
        )
    console.print(table)


def _fresh_envelope(payload: str) -> bytes:
    """The same CDR in a new envelope (new event id and time), numbers kept exactly."""
    document = loads_exact(payload)
    if not isinstance(document, dict):
        raise ValueError("the rejected payload is not an event envelope")
    document["event_id"] = str(uuid.uuid4())
    document["occurred_at"] = format_datetime(datetime.now(UTC))
    return encode_json(document).encode()


@app.command()
def retry(
    rejection_ids: Annotated[list[int], typer.Argument(help="rejection ids (see `list`)")],
    force: Annotated[bool, typer.Option(help="also retry reasons no hub-side fix cures")] = False,
) -> None:
    """Re-submit rejected events to cdr.submitted (after the cause is fixed, e.g. a tariff
    published late). Each retry is a new event with its own outcome."""
    settings = live_settings()
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    with connect(settings.database_url) as conn:
        known = {r["rejection_id"]: r for r in books.rejections(conn, limit=1_000_000)}
        rows = books.rejection_payloads(conn, rejection_ids)
        records, retried = [], []
        for row in rows:
            reason = known[row["rejection_id"]]["reason_code"]
            if reason not in {r.value for r in RETRYABLE} and not force:
                error_console.print(
                    f"rejection {row['rejection_id']} ({reason}) is the partner's to fix; "
                    "use --force to re-submit it anyway"
                )
                continue
            if reason == Reason.MALFORMED_JSON.value:
                error_console.print(f"rejection {row['rejection_id']} is not JSON: skipped")
                continue
            value = _fresh_envelope(row["payload"])
            records.append((row["key"], value))
            retried.append((row["rejection_id"], json.loads(value)["event_id"]))
        missing = set(rejection_ids) - {row["rejection_id"] for row in rows}
        for rejection_id in sorted(missing):
            error_console.print(f"no rejection {rejection_id}")
        topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
        asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records))
        for rejection_id, event_id in retried:
            books.record_retry(conn, rejection_id, event_id)
    console.print(f"re-submitted {len(retried)} event(s)")
    if missing or len(retried) < len(rejection_ids):
        raise typer.Exit(1)
