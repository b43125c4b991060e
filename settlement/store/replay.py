"""A replay's reads: the archived records of a time range with their outcomes, the ledger as
it stood without their bookings, and the reference data as of any moment.

Records are selected by our own index of the archive (raw_event (topic, broker_timestamp)),
not by the broker's `offsets_for_times`, which the embedded broker gets wrong. Reference
data is append-only with the hub's time of each version (tariff_version.published_at,
tariff_lifecycle.recorded_at, the location_version that set a location_zone,
agreement_version.published_at), so the view as of a moment is the rows stored by then;
partners and their keys are read as they are now.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import psycopg

from schemas.hub.ledger import TransactionKind
from schemas.hub.party import CdrKey
from settlement.clearing.entry import Amounts, Booking
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.clearing.reasons import Reason
from settlement.replay.model import (
    REPLAY_CHUNK_MAX,
    Original,
    OriginalOutcome,
    PricedWith,
    Reference,
    ReferenceMode,
    ReplayedRecord,
    Verdict,
)
from settlement.replay.run import Replay, Views
from settlement.store.clearing_store import BOOKING_POSTINGS, stored_bookings
from settlement.store.db import Row
from settlement.store.reference_store import (
    SNAPSHOT_QUERIES,
    ReferenceSnapshot,
    build_snapshot,
    load_snapshot,
)

_IN_RANGE = """EXISTS (SELECT 1 FROM raw_event e WHERE e.archive_id = {column}
    AND e.topic = %(topic)s AND e.broker_timestamp >= %(start)s AND e.broker_timestamp < %(end)s)"""
# A record is compared with the booking in force: its last correction's charge when an
# applied replay corrected it (replay_correction), else what clearing booked.
_RECORDS = """
SELECT e.archive_id, e.topic, e.partition, e."offset", e.broker_timestamp, e.value,
       e.headers::text AS headers,  -- names and hex only: no need of the exact JSON loader
       CASE WHEN c.charge_id IS NULL THEN o.outcome ELSE 'LEDGERED' END AS outcome,
       o.decided_at, coalesce(c.charge_id, o.transaction_id) AS transaction_id,
       coalesce(c.cdr_key, t.cdr_key) AS booked_key, t.kind, t.cpo, t.emsp, t.currency,
       t.amount_excl_vat, t.amount_incl_vat, t.fee,
       -- only the references a cause is told by (a reversal names its original's): the
       -- whole record parsed would cost a replay more than deciding the CDR again
       coalesce(t.rating->'tariff', t.rating->'original'->'tariff')->>'content_hash'
           AS tariff_hash,
       coalesce(t.rating->'agreement', t.rating->'original'->'agreement')->>'agreement_id'
           AS agreement_id,
       (coalesce(t.rating->'agreement', t.rating->'original'->'agreement')->>'version')::int
           AS agreement_version,
       t.rating->>'time_zone' AS time_zone,
       j.reason_code, j.cdr_key AS rejected_key, j.submitter
  FROM raw_event e
  JOIN cdr_outcome o USING (archive_id)
  LEFT JOIN LATERAL (SELECT c.charge_id, c.cdr_key FROM replay_correction c
                      WHERE c.archive_id = e.archive_id
                      ORDER BY c.correction_id DESC LIMIT 1) c ON true
  LEFT JOIN ledger_transaction t ON t.transaction_id = coalesce(c.charge_id, o.transaction_id)
  LEFT JOIN rejection j ON j.rejection_id = o.rejection_id
 WHERE e.topic = %(topic)s AND e.broker_timestamp >= %(start)s AND e.broker_timestamp < %(end)s
 ORDER BY e.archive_id
"""
# A booking made by a replayed record is left out (the replay makes it again), and so is a
# reversal made by one: the original is then not reversed yet when the replay reaches it.
_BOOKINGS_BEFORE = f"""
SELECT t.cdr_key, t.transaction_id, t.content_hash, t.kind, r.transaction_id AS reversed_by,
       t.amount_excl_vat, t.amount_incl_vat, t.fee, t.rating
  FROM ledger_transaction t
  LEFT JOIN ledger_transaction r
    ON r.reverses = t.transaction_id AND NOT {_IN_RANGE.format(column="r.archive_id")}
 WHERE t.cdr_key = ANY(%(keys)s) AND t.kind IN ('CHARGE', 'REVERSAL')
   AND NOT {_IN_RANGE.format(column="t.archive_id")}
"""
# Reference rows with the hub's time of each (`stored`), for views as of a moment.
_TIMED_QUERIES = {
    "tariffs": "SELECT body, published_at AS stored FROM tariff_version "
    "ORDER BY tariff_key, last_updated",
    "tariff_lifecycle": "SELECT cpo, tariff_id, event, at, recorded_at AS stored "
    "FROM tariff_lifecycle ORDER BY tariff_key, at",
    "locations": "SELECT z.cpo, z.location_id, z.time_zone, v.published_at AS stored "
    "FROM location_zone z JOIN location_version v USING (location_key, revision) "
    "ORDER BY z.location_key, z.revision",
    "agreements": "SELECT body, published_at AS stored FROM agreement_version "
    "ORDER BY agreement_id, version",
}


class ReplayRange:
    """The archived records of `topic` whose broker time is in [start, end)."""

    def __init__(self, topic: str, start: datetime, end: datetime) -> None:
        assert start < end, "an empty range"
        self.params: dict[str, Any] = {"topic": topic, "start": start, "end": end}

    def count(self, conn: psycopg.Connection[Row]) -> int:
        query = "SELECT count(*) AS n FROM raw_event e WHERE " + _IN_RANGE.format(
            column="e.archive_id"
        )
        row = conn.execute(query, self.params).fetchone()
        assert row is not None
        return int(row["n"])

    def records(self, conn: psycopg.Connection[Row]) -> Iterator[list[ReplayedRecord]]:
        """The records in archive order, a chunk at a time (a server-side cursor)."""
        with conn.cursor(name="replay_records") as cursor:
            cursor.execute(_RECORDS, self.params)
            while rows := cursor.fetchmany(REPLAY_CHUNK_MAX):
                yield [archived_record(row) for row in rows]

    def bookings_before(
        self, conn: psycopg.Connection[Row], keys: set[CdrKey]
    ) -> dict[CdrKey, Booking]:
        """What the ledger holds for `keys` without the bookings of the range's records."""
        asked = {str(key): key for key in keys}
        rows = conn.execute(_BOOKINGS_BEFORE, {**self.params, "keys": sorted(asked)}).fetchall()
        if not rows:
            return {}
        ids = [row["transaction_id"] for row in rows]
        return stored_bookings(asked, rows, conn.execute(BOOKING_POSTINGS, (ids,)).fetchall())


def _headers(stored: list[list[Any]]) -> tuple[tuple[str, bytes | None], ...]:
    """The archived header pairs back as the Kafka client gave them (clearing_store)."""
    pairs = []
    for stored_name, value in stored:
        name = (
            bytes.fromhex(stored_name["hex"]).decode("utf-8", "surrogateescape")
            if isinstance(stored_name, dict)
            else stored_name
        )
        pairs.append((name, None if value is None else bytes.fromhex(value)))
    return tuple(pairs)


def _priced_with(row: Row) -> PricedWith:
    agreement = row["agreement_id"]
    named = None if agreement is None else (agreement, row["agreement_version"])
    return PricedWith(row["tariff_hash"], named, row["time_zone"])


def archived_record(row: Row) -> ReplayedRecord:
    outcome = OriginalOutcome(row["outcome"])
    ledgered = outcome is OriginalOutcome.LEDGERED
    original = Original(
        outcome=outcome,
        decided_at=row["decided_at"],
        cdr_key=row["booked_key"] or row["rejected_key"],
        transaction_id=None if row["transaction_id"] is None else str(row["transaction_id"]),
        kind=TransactionKind(row["kind"]) if ledgered else None,
        cpo=row["cpo"] or row["submitter"],
        emsp=row["emsp"],
        currency=row["currency"],
        amounts=(
            Amounts(row["amount_excl_vat"], row["amount_incl_vat"], row["fee"])
            if ledgered
            else None
        ),
        priced_with=_priced_with(row) if ledgered else None,
        reason=row["reason_code"],
    )
    unreadable = row["reason_code"] == Reason.UNREADABLE_RECORD.value
    return ReplayedRecord(
        archive_id=row["archive_id"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        broker_time=row["broker_timestamp"],
        value=None if row["value"] is None else bytes(row["value"]),
        headers=_headers(json.loads(row["headers"])),
        original=original,
        unreadable="the Kafka client could not read it when it was cleared" if unreadable else None,
    )


class ReferenceHistory:
    """The reference data with the hub's time of every row: a view as of any moment, built
    once per distinct state (a replay of a month meets a handful)."""

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._timed = {name: conn.execute(q).fetchall() for name, q in _TIMED_QUERIES.items()}
        self._current = {
            name: conn.execute(SNAPSHOT_QUERIES[name]).fetchall()
            for name in ("partners", "partner_keys")
        }
        self._stamps = sorted({row["stored"] for rows in self._timed.values() for row in rows})
        self._views: dict[int, ReferenceSnapshot] = {}

    def as_of(self, moment: datetime) -> ReferenceSnapshot:
        state = bisect_right(self._stamps, moment)  # how many distinct times are <= moment
        view = self._views.get(state)
        if view is None:
            cutoff = self._stamps[state - 1] if state else None
            rows = {
                name: [r for r in rows if cutoff is not None and r["stored"] <= cutoff]
                for name, rows in self._timed.items()
            }
            view = self._views[state] = build_snapshot({**rows, **self._current})
        return view


def reference_views(conn: psycopg.Connection[Row], reference: Reference) -> Views:
    """decided_at -> the view a record decided then is replayed with (settlement.replay.run)."""
    if reference.mode is ReferenceMode.CURRENT:
        current = load_snapshot(conn)
        return lambda _decided_at: current
    history = ReferenceHistory(conn)
    if reference.mode is ReferenceMode.AS_OF:
        assert reference.as_of is not None
        fixed = history.as_of(reference.as_of)
        return lambda _decided_at: fixed
    return history.as_of


def replay(
    conn: psycopg.Connection[Row],
    selected: ReplayRange,
    reference: Reference,
    hub_keys: Mapping[str, bytes],
    limits: PlausibilityLimits,
    progress: Callable[[int], None] = lambda _: None,
) -> Iterator[Verdict]:
    """Every record of the range replayed, in archive order; `progress` gets each chunk's
    size. Reads only: one REPEATABLE READ snapshot, so the ledger, the archive and the
    reference data are read as of one moment."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    run = Replay(
        reference_views(conn, reference),
        lambda keys: selected.bookings_before(conn, keys),
        hub_keys,
        limits,
    )
    for chunk in selected.records(conn):
        yield from run.chunk(chunk)
        progress(len(chunk))
