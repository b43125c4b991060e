"""From the clearing worker's events to delivery rows (settlement.store.deliveries).

`cdr.rated` announces a CHARGE (with the hub's component totals, which the delivered CDR
carries when the agreement settles on the hub's computation); `ledger.transactions` announces
every booking, of which only REVERSALs are taken here (a credit CDR has no `cdr.rated`). The
rest of what a delivery needs is in PostgreSQL: the booking, the CDR as archived.

The clearing worker sends its events before it commits (docs/clearing.md, "One batch"), so an
event may arrive before its booking is visible: the intake waits for it, up to
`BOOKING_WAIT_S_MAX`. A booking still missing then was rolled back (the worker stopped before
its commit); the record comes back to a worker, which books it again and sends the event
again, so this one is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import psycopg

from schemas.base import loads_exact
from schemas.hub.agreement import SettlementBasis
from schemas.wire import encode_json_bytes
from settlement.delivery.document import COMPONENT_FIELDS, Settled, charge_document
from settlement.store import deliveries
from settlement.store.db import Row
from settlement.store.deliveries import BookingSource, NewDelivery

log = logging.getLogger("roamclear.deliveries")

BOOKING_WAIT_S_MAX: Final = 30.0
BOOKING_POLL_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class Announced:
    """A booking an event announced: its transaction id and, for a charge, the hub's
    component totals from cdr.rated."""

    transaction_id: str
    hub_components: dict[str, Any] | None  # None: a reversal


def announced(value: bytes | None) -> Announced | None:
    """The booking an event announces; None for an event that announces nothing to deliver
    (a CHARGE's ledger.transaction: its cdr.rated does) or that is not one of ours."""
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind == "cdr.rated" and isinstance(rated := event.get("rated_cdr"), dict):
        transaction_id = rated.get("transaction_id")
        if isinstance(transaction_id, str):
            return Announced(transaction_id, {f: rated.get(f) for f in COMPONENT_FIELDS})
    if kind == "ledger.transaction" and isinstance(booked := event.get("transaction"), dict):
        transaction_id = booked.get("transaction_id")
        if booked.get("kind") == "REVERSAL" and isinstance(transaction_id, str):
            return Announced(transaction_id, None)
    return None


def new_delivery(source: BookingSource, hub_components: dict[str, Any] | None) -> NewDelivery:
    """The delivery row of a booking; a charge's document built now, a credit's once the
    CDR it credits has reached the eMSP (the dispatcher builds it)."""
    document = None
    if source.kind == "CHARGE":
        cdr = loads_exact(source.submitted)["cdr"]
        document = encode_json_bytes(
            charge_document(
                cdr,
                source.settles or SettlementBasis.HUB_COMPUTED,
                Settled(source.amount_excl_vat, source.amount_incl_vat),
                hub_components or {},
            )
        )
    return NewDelivery(
        transaction_id=source.transaction_id,
        kind=source.kind,
        reverses=source.reverses,
        cdr_key=source.cdr_key,
        cpo=source.cpo,
        emsp=source.emsp,
        document=document,
        correlation_id=source.correlation_id or str(uuid.uuid4()),
    )


async def take(conn: psycopg.AsyncConnection[Row], events: Sequence[Announced]) -> int:
    """Create the deliveries these events announce (for eMSPs the hub pushes to); how many
    were new. Commits itself."""
    wanted = {event.transaction_id: event for event in events}
    if not wanted:
        return 0
    found: dict[str, BookingSource] = {}
    deadline = time.monotonic() + BOOKING_WAIT_S_MAX
    while True:
        async with conn.transaction():
            found |= await deliveries.sources(conn, [t for t in wanted if t not in found])
        if len(found) == len(wanted) or time.monotonic() > deadline:
            break
        await asyncio.sleep(BOOKING_POLL_S)
    for missing in sorted(set(wanted) - set(found)):
        log.warning(
            "deliveries: no booking %s in PostgreSQL after %.0f s (rolled back; the record "
            "is booked again and announced again)",
            missing,
            BOOKING_WAIT_S_MAX,
        )
    async with conn.transaction():
        receivers = await deliveries.receiving_emsps(conn)
        rows = [
            new_delivery(source, wanted[source.transaction_id].hub_components)
            for source in found.values()
            if source.emsp in receivers
        ]
        return await deliveries.create(conn, rows)
