"""From the clearing worker's events to delivery rows (settlement.store.deliveries).

`cdr.rated` announces a CHARGE (with the hub's component totals, which the delivered CDR
carries when the agreement settles on the hub's computation); `ledger.transactions` announces
every booking, of which only REVERSALs are taken here (a credit CDR has no `cdr.rated`). The
rest of what a delivery needs is in PostgreSQL: the booking, the CDR as archived. Every
booking gets a row for its eMSP: pushed (PENDING) when the eMSP has a `cdrs` RECEIVER
endpoint, otherwise kept for it to pull (PULL).

A reversal's document is built from its original's as delivered, and the two events travel on
two topics in no order between them: a reversal first waits in `cdr_delivery_waiting`, and
`promote` (after every batch, and every few seconds from the dispatcher) moves it on once its
original's row is there.

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
from datetime import datetime
from typing import Any, Final

import orjson
import psycopg

from schemas.base import loads_exact
from schemas.hub.agreement import SettlementBasis
from schemas.wire import encode_json_bytes
from settlement.delivery.document import (
    COMPONENT_FIELDS,
    Settled,
    charge_document,
    credit_document,
)
from settlement.store import deliveries
from settlement.store.db import Row
from settlement.store.deliveries import BookingSource, DeliveryState, NewDelivery, ReadyReversal

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


def _last_updated(cdr: dict[str, Any]) -> datetime:
    # the CDR was validated when it was booked: last_updated is RFC 3339
    return datetime.fromisoformat(str(cdr["last_updated"]))


def charge_delivery(
    source: BookingSource, hub_components: dict[str, Any] | None, pushed: bool
) -> NewDelivery:
    """A charge's delivery row: the CPO's CDR with the settled price (module docstring of
    settlement.delivery.document)."""
    cdr = loads_exact(source.submitted)["cdr"]
    document = charge_document(
        cdr,
        source.settles or SettlementBasis.HUB_COMPUTED,
        Settled(source.amount_excl_vat, source.amount_incl_vat),
        hub_components or {},
    )
    return _delivery(source, cdr, document, DeliveryState.PENDING if pushed else DeliveryState.PULL)


def credit_delivery(source: BookingSource, original: ReadyReversal) -> NewDelivery:
    """A reversal's delivery row: the CPO's credit CDR mirroring its original as the eMSP got
    it, delivered the way the original was (pushed, or pulled)."""
    credit = loads_exact(source.submitted)["cdr"]
    document = credit_document(credit, loads_exact(original.original_document))
    pulled = original.original_state is DeliveryState.PULL
    return _delivery(
        source, credit, document, DeliveryState.PULL if pulled else DeliveryState.PENDING
    )


def _delivery(
    source: BookingSource, cdr: dict[str, Any], document: dict[str, Any], state: DeliveryState
) -> NewDelivery:
    return NewDelivery(
        transaction_id=source.transaction_id,
        kind=source.kind,
        reverses=source.reverses,
        cdr_key=source.cdr_key,
        cpo=source.cpo,
        emsp=source.emsp,
        document=encode_json_bytes(document),
        correlation_id=source.correlation_id or str(uuid.uuid4()),
        last_updated=_last_updated(cdr),
        state=state,
    )


async def _committed(
    conn: psycopg.AsyncConnection[Row], transaction_ids: Sequence[str]
) -> dict[str, BookingSource]:
    """The bookings, waiting (bounded) for those not committed yet (module docstring)."""
    found: dict[str, BookingSource] = {}
    deadline = time.monotonic() + BOOKING_WAIT_S_MAX
    while True:
        async with conn.transaction():
            found |= await deliveries.sources(conn, [t for t in transaction_ids if t not in found])
        if len(found) == len(transaction_ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(BOOKING_POLL_S)
    for missing in sorted(set(transaction_ids) - set(found)):
        log.warning(
            "deliveries: no booking %s in PostgreSQL after %.0f s (rolled back; the record "
            "is booked again and announced again)",
            missing,
            BOOKING_WAIT_S_MAX,
        )
    return found


async def take(conn: psycopg.AsyncConnection[Row], events: Sequence[Announced]) -> int:
    """Create the deliveries these events announce; how many were new (charges and the
    reversals whose original's delivery is there). Commits itself."""
    wanted = {event.transaction_id: event for event in events}
    found = await _committed(conn, list(wanted))
    charges = [s for s in found.values() if s.kind == "CHARGE"]
    reversals = [s for s in found.values() if s.kind == "REVERSAL"]
    async with conn.transaction():
        receivers = await deliveries.receiving_emsps(conn)
        created = await deliveries.create(
            conn,
            [
                charge_delivery(s, wanted[s.transaction_id].hub_components, s.emsp in receivers)
                for s in charges
            ],
        )
        await deliveries.wait_for_originals(conn, reversals)
    return created + await promote(conn)


async def promote(conn: psycopg.AsyncConnection[Row]) -> int:
    """Create the deliveries of waiting reversals whose original's delivery is there now;
    how many. Commits itself."""
    async with conn.transaction():
        ready = await deliveries.ready_reversals(conn)
        if not ready:
            return 0
        found = await deliveries.sources(conn, [r.transaction_id for r in ready])
        created = await deliveries.create(
            conn, [credit_delivery(found[r.transaction_id], r) for r in ready]
        )
        await deliveries.done_waiting(conn, [r.transaction_id for r in ready])
        return created
