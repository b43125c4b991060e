"""The CDR delivery ledger in PostgreSQL (migration 0016): creating deliveries, claiming due
ones, recording attempts, and what operators and finance read.

The delivery agent creates rows (`sources`, `create`); each dispatcher claims due rows of one
eMSP (`claim`), records the attempt before its POST (`start`) and the answer after it
(`finish`). `list_deliveries`, `show` and `requeue` serve `roamclear deliveries` and the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import psycopg

from schemas.hub.agreement import SettlementBasis
from settlement.delivery.answer import Verdict
from settlement.store.db import Row

LIST_LIMIT_DEFAULT: Final = 100


class DeliveryState(StrEnum):
    PULL = "PULL"  # the eMSP pulls it (no cdrs RECEIVER endpoint when booked): final
    PENDING = "PENDING"  # not tried yet (a credit: waiting for its original's delivery)
    RETRYING = "RETRYING"  # failed; tried again at next_attempt_at
    DELIVERED = "DELIVERED"  # the eMSP has it: final
    DEAD = "DEAD"  # failed attempts_max times in a row; `deliveries retry` re-queues it


@dataclass(frozen=True, slots=True)
class BookingSource:
    """What a delivery is built from: the booking, the CDR as the CPO sent it (the archived
    cdr.submitted record) and the correlation id of the CPO's request (when it came over
    OCPI HTTP)."""

    transaction_id: str
    kind: str
    reverses: str | None
    cdr_key: str
    cpo: str
    emsp: str
    settles: SettlementBasis | None  # None for a reversal (it mirrors its original)
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal
    submitted: bytes  # the archived record's value
    correlation_id: str | None


_SOURCES: Final = """
SELECT t.transaction_id::text, t.kind, t.reverses::text, t.cdr_key, t.cpo, t.emsp,
       t.rating->>'settles' AS settles, t.amount_excl_vat, t.amount_incl_vat,
       e.value AS submitted,
       (SELECT r.correlation_id FROM ocpi_cdr_receipt r
         WHERE r.cdr_key = t.cdr_key AND r.outcome = 'ACCEPTED') AS correlation_id
  FROM ledger_transaction t
  JOIN raw_event e ON e.archive_id = t.archive_id
 WHERE t.transaction_id = ANY(%s::uuid[])
"""


async def sources(
    conn: psycopg.AsyncConnection[Row], transaction_ids: Sequence[str]
) -> dict[str, BookingSource]:
    """The bookings of these transaction ids that PostgreSQL holds (committed), by id."""
    cursor = await conn.execute(_SOURCES, (list(transaction_ids),))
    found = {}
    for row in await cursor.fetchall():
        settles = row["settles"]
        found[row["transaction_id"]] = BookingSource(
            transaction_id=row["transaction_id"],
            kind=row["kind"],
            reverses=row["reverses"],
            cdr_key=row["cdr_key"],
            cpo=row["cpo"],
            emsp=row["emsp"],
            settles=None if settles is None else SettlementBasis(settles),
            amount_excl_vat=row["amount_excl_vat"],
            amount_incl_vat=row["amount_incl_vat"],
            submitted=bytes(row["submitted"]),
            correlation_id=row["correlation_id"],
        )
    return found


async def receiving_emsps(conn: psycopg.AsyncConnection[Row]) -> frozenset[str]:
    """The partners registered over OCPI with a `cdrs` RECEIVER endpoint: the eMSPs the hub
    pushes CDRs to (the others pull them: GET /ocpi/2.2.1/cdrs)."""
    cursor = await conn.execute(
        """SELECT partner FROM ocpi_connection_current c
            WHERE c.event <> 'UNREGISTERED'
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.endpoints) e
                           WHERE e->>'identifier' = 'cdrs' AND e->>'role' = 'RECEIVER')"""
    )
    return frozenset(row["partner"] for row in await cursor.fetchall())


@dataclass(frozen=True, slots=True)
class NewDelivery:
    transaction_id: str
    kind: str
    reverses: str | None
    cdr_key: str
    cpo: str
    emsp: str
    document: bytes
    correlation_id: str
    last_updated: datetime
    state: DeliveryState  # PENDING (pushed) or PULL


# Every transaction inserting deliveries takes it first, so delivery ids grow in commit order
# and a GET /cdrs page walk never has a row appear behind it (migration 0016).
_CREATE_LOCK: Final = "SELECT pg_advisory_xact_lock(hashtext('cdr_delivery insert'))"
_CREATE: Final = """
INSERT INTO cdr_delivery (transaction_id, kind, reverses, cdr_key, cpo, emsp, document,
                          correlation_id, last_updated, state)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[],
                     %s::bytea[], %s::text[], %s::timestamptz[], %s::text[])
ORDER BY 1
ON CONFLICT ON CONSTRAINT one_delivery_per_cdr_and_emsp DO NOTHING
"""


async def create(conn: psycopg.AsyncConnection[Row], deliveries: Sequence[NewDelivery]) -> int:
    """Insert the deliveries not there yet (a redelivered event creates nothing); how many
    were new. Call inside a transaction: the lock it takes is held until the commit."""
    if not deliveries:
        return 0
    columns: list[list[Any]] = [[] for _ in range(10)]
    for d in deliveries:
        values = (
            d.transaction_id,
            d.kind,
            d.reverses,
            d.cdr_key,
            d.cpo,
            d.emsp,
            d.document,
            d.correlation_id,
            d.last_updated,
            d.state.value,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    await conn.execute(_CREATE_LOCK)
    cursor = await conn.execute(_CREATE, columns)
    return cursor.rowcount


async def wait_for_originals(
    conn: psycopg.AsyncConnection[Row], reversals: Sequence[BookingSource]
) -> None:
    """Queue reversals until their original's delivery row exists (`ready_reversals`)."""
    await conn.execute(
        """INSERT INTO cdr_delivery_waiting (transaction_id, reverses)
           SELECT * FROM unnest(%s::uuid[], %s::uuid[]) ON CONFLICT DO NOTHING""",
        ([r.transaction_id for r in reversals], [r.reverses for r in reversals]),
    )


@dataclass(frozen=True, slots=True)
class ReadyReversal:
    """A waiting reversal whose original's delivery is there: what its own is built from."""

    transaction_id: str
    original_document: bytes
    original_state: DeliveryState


async def ready_reversals(conn: psycopg.AsyncConnection[Row]) -> list[ReadyReversal]:
    cursor = await conn.execute(
        """SELECT w.transaction_id::text, o.document, o.state
             FROM cdr_delivery_waiting w
             JOIN cdr_delivery o ON o.transaction_id = w.reverses
            ORDER BY w.transaction_id
              FOR UPDATE OF w SKIP LOCKED"""
    )
    return [
        ReadyReversal(row["transaction_id"], bytes(row["document"]), DeliveryState(row["state"]))
        for row in await cursor.fetchall()
    ]


async def done_waiting(conn: psycopg.AsyncConnection[Row], transaction_ids: Sequence[str]) -> None:
    await conn.execute(
        "DELETE FROM cdr_delivery_waiting WHERE transaction_id = ANY(%s::uuid[])",
        (list(transaction_ids),),
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for one attempt (number `attempt`), recorded with its
    X-Request-ID."""

    delivery_id: int
    transaction_id: str
    kind: str
    cdr_key: str
    cpo: str
    emsp: str
    attempt: int
    failed_in_a_row: int  # failed attempts since created or re-queued, before this one
    correlation_id: str
    document: bytes
    request_id: str  # new per attempt, recorded before the POST


# A row is due when its time has come, nobody holds it, and (a credit) the CDR it credits
# has reached the same eMSP. SKIP LOCKED: dispatchers never wait on each other's claims.
# One statement claims and records the attempts: it commits (autocommit) before any POST,
# in one round trip rather than four (bench deliver: round trips set the dispatcher's pace).
# A credit waits for its original's delivery (which may never come: a DEAD original holds
# its credit until an operator re-queues it).
_ORIGINAL_DELIVERED: Final = """(c.kind = 'CHARGE' OR EXISTS (
                SELECT 1 FROM cdr_delivery o
                 WHERE o.transaction_id = c.reverses AND o.emsp = c.emsp
                   AND o.state = 'DELIVERED'))"""
_CLAIM: Final = f"""
WITH due AS (
    SELECT c.delivery_id FROM cdr_delivery c
     WHERE c.emsp = %(emsp)s AND c.state IN ('PENDING', 'RETRYING')
       AND c.next_attempt_at <= now()
       AND (c.lease_until IS NULL OR c.lease_until < now())
       AND {_ORIGINAL_DELIVERED}
     ORDER BY c.next_attempt_at, c.delivery_id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE cdr_delivery d
       SET lease_until = now() + make_interval(secs => %(lease_s)s), attempts = d.attempts + 1
      FROM due
     WHERE d.delivery_id = due.delivery_id
    RETURNING d.delivery_id, d.transaction_id::text, d.kind, d.cdr_key, d.cpo, d.emsp,
              d.attempts, d.attempts - 1 - d.requeued_after AS failed_in_a_row,
              d.correlation_id, d.document
), started AS (
    INSERT INTO cdr_delivery_attempt (delivery_id, attempt, request_id, url)
    SELECT delivery_id, attempts, gen_random_uuid()::text, %(url)s FROM claimed
    RETURNING delivery_id, request_id
)
SELECT claimed.*, started.request_id
  FROM claimed JOIN started USING (delivery_id)
 ORDER BY claimed.delivery_id
"""


async def claim(
    conn: psycopg.AsyncConnection[Row], emsp: str, limit: int, lease_s: float, url: str
) -> list[Claimed]:
    """Claim up to `limit` due deliveries to `emsp`, each for one attempt at `url`, and
    record the attempts. Run it outside a transaction (autocommit): the claim must be
    committed before the POSTs, as it is what keeps other dispatchers off."""
    cursor = await conn.execute(
        _CLAIM, {"emsp": emsp, "limit": limit, "lease_s": lease_s, "url": url}
    )
    return [
        Claimed(
            delivery_id=row["delivery_id"],
            transaction_id=row["transaction_id"],
            kind=row["kind"],
            cdr_key=row["cdr_key"],
            cpo=row["cpo"],
            emsp=row["emsp"],
            attempt=row["attempts"],
            failed_in_a_row=row["failed_in_a_row"],
            correlation_id=row["correlation_id"],
            document=bytes(row["document"]),
            request_id=row["request_id"],
        )
        for row in await cursor.fetchall()
    ]


@dataclass(frozen=True, slots=True)
class Answered:
    """An attempt's answer and what follows from it."""

    claimed: Claimed
    verdict: Verdict
    location: str | None
    retry_in_s: float  # a failure: when to try again
    gives_up: bool  # a failure: the last attempt allowed

    @property
    def next_state(self) -> DeliveryState:
        if self.verdict.delivered:
            return DeliveryState.DELIVERED
        return DeliveryState.DEAD if self.gives_up else DeliveryState.RETRYING


# The attempts' answers and the deliveries' next states in one statement (one round trip).
# A delivery claimed again meanwhile by another dispatcher (its lease ran out during a slow
# POST: `attempts` moved on) is left to that one, unless this attempt delivered.
_FINISH: Final = """
WITH v AS (
    SELECT * FROM unnest(%s::bigint[], %s::int[], %s::bool[], %s::int[], %s::int[],
                         %s::text[], %s::text[], %s::text[], %s::text[], %s::float8[])
        AS v(delivery_id, attempt, delivered, http_status, ocpi_status, error, request_id,
             location, state, retry_in_s)
), attempts AS (
    UPDATE cdr_delivery_attempt a
       SET finished_at = clock_timestamp(), delivered = v.delivered,
           http_status = v.http_status, ocpi_status = v.ocpi_status, error = v.error
      FROM v
     WHERE a.delivery_id = v.delivery_id AND a.attempt = v.attempt
)
UPDATE cdr_delivery d
   SET state = v.state, lease_until = NULL, last_error = v.error,
       delivered_at = CASE WHEN v.delivered THEN clock_timestamp() ELSE d.delivered_at END,
       request_id = CASE WHEN v.delivered THEN v.request_id ELSE d.request_id END,
       emsp_location = CASE WHEN v.delivered THEN v.location ELSE d.emsp_location END,
       next_attempt_at = CASE WHEN v.delivered THEN d.next_attempt_at
                              ELSE clock_timestamp() + make_interval(secs => v.retry_in_s) END
  FROM v
 WHERE d.delivery_id = v.delivery_id AND d.state <> 'DELIVERED'
   AND (v.delivered OR d.attempts = v.attempt)
"""


async def finish(conn: psycopg.AsyncConnection[Row], answers: Sequence[Answered]) -> None:
    """Record the attempts' answers, and each delivery's next state: DELIVERED, or RETRYING
    after its `retry_in_s`, or DEAD."""
    if not answers:
        return
    await conn.execute(
        _FINISH,
        (
            [a.claimed.delivery_id for a in answers],
            [a.claimed.attempt for a in answers],
            [a.verdict.delivered for a in answers],
            [a.verdict.http_status for a in answers],
            [a.verdict.ocpi_status for a in answers],
            [a.verdict.error for a in answers],
            [a.claimed.request_id for a in answers],
            [a.location for a in answers],
            [a.next_state.value for a in answers],
            [a.retry_in_s for a in answers],
        ),
    )


async def next_due_in_s(conn: psycopg.AsyncConnection[Row], emsp: str) -> float | None:
    """Seconds until the eMSP's next claimable delivery falls due (0 if one is due), None if
    none waits. A credit whose original is not delivered yet is not claimable: counting it
    would have its dispatcher poll without pause until the original's answer. (min() over
    no rows is NULL, and greatest() skips NULLs: the wait is taken apart in Python, or an
    idle eMSP would read as "due now".)"""
    cursor = await conn.execute(
        f"""SELECT extract(epoch FROM min(greatest(c.next_attempt_at,
                                                  coalesce(c.lease_until, now())))
                                  - now())::float8 AS wait_s
              FROM cdr_delivery c
             WHERE c.emsp = %s AND c.state IN ('PENDING', 'RETRYING')
               AND {_ORIGINAL_DELIVERED}""",
        (emsp,),
    )
    row = await cursor.fetchone()
    wait_s = None if row is None else row["wait_s"]
    return None if wait_s is None else max(0.0, wait_s)


# -- what people read ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    delivery_id: int
    cdr_key: str
    kind: str
    transaction_id: str
    cpo: str
    emsp: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None  # None once delivered or dead
    last_error: str | None
    emsp_location: str | None
    request_id: str | None
    correlation_id: str
    created_at: datetime
    delivered_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True, slots=True)
class AttemptRow:
    attempt: int
    request_id: str
    url: str
    started_at: datetime
    finished_at: datetime | None  # None: cut short (the dispatcher stopped during it)
    delivered: bool | None
    http_status: int | None
    ocpi_status: int | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return _plain(self)


def _plain(row: DeliveryRow | AttemptRow) -> dict[str, Any]:
    """A row's fields as JSON-ready values: times ISO 8601, states their names."""
    return {
        name: value.isoformat()
        if isinstance(value, datetime)
        else value.value
        if isinstance(value, DeliveryState)
        else value
        for name, value in asdict(row).items()
    }


_COLUMNS: Final = """
delivery_id, cdr_key, kind, transaction_id::text, cpo, emsp, state, attempts,
CASE WHEN state IN ('PENDING', 'RETRYING') THEN next_attempt_at END AS next_attempt_at,
last_error, emsp_location, request_id, correlation_id, created_at, delivered_at
"""


def _row(row: Row) -> DeliveryRow:
    return DeliveryRow(**{**row, "state": DeliveryState(row["state"])})


def list_deliveries(
    conn: psycopg.Connection[Row],
    partner: str | None = None,
    state: DeliveryState | None = None,
    limit: int = LIST_LIMIT_DEFAULT,
    offset: int = 0,
) -> list[DeliveryRow]:
    """Deliveries, newest first; `partner` matches the eMSP or the CPO."""
    rows = conn.execute(
        f"""SELECT {_COLUMNS} FROM cdr_delivery
             WHERE (%(partner)s::text IS NULL OR emsp = %(partner)s OR cpo = %(partner)s)
               AND (%(state)s::text IS NULL OR state = %(state)s)
             ORDER BY delivery_id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        {
            "partner": partner,
            "state": None if state is None else state.value,
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    return [_row(row) for row in rows]


def counts(conn: psycopg.Connection[Row], partner: str | None = None) -> dict[str, int]:
    """Deliveries per state (every state named, 0 where none)."""
    rows = conn.execute(
        """SELECT state, count(*) AS n FROM cdr_delivery
            WHERE %(partner)s::text IS NULL OR emsp = %(partner)s OR cpo = %(partner)s
            GROUP BY state""",
        {"partner": partner},
    ).fetchall()
    found = {row["state"]: row["n"] for row in rows}
    return {state.value: found.get(state.value, 0) for state in DeliveryState}


def deliverable_bookings(conn: psycopg.Connection[Row]) -> int:
    """Bookings that have (or will have) a delivery: every CHARGE and REVERSAL."""
    row = conn.execute(
        "SELECT count(*) AS n FROM ledger_transaction WHERE kind IN ('CHARGE', 'REVERSAL')"
    ).fetchone()
    return 0 if row is None else int(row["n"])


def delivered_keys(conn: psycopg.Connection[Row]) -> list[tuple[str, str]]:
    """(eMSP, CDR key) of every delivered CDR."""
    rows = conn.execute(
        "SELECT emsp, cdr_key FROM cdr_delivery WHERE state = 'DELIVERED' ORDER BY delivery_id"
    ).fetchall()
    return [(row["emsp"], row["cdr_key"]) for row in rows]


def retried_then_delivered(conn: psycopg.Connection[Row]) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM cdr_delivery WHERE state = 'DELIVERED' AND attempts > 1"
    ).fetchone()
    return 0 if row is None else int(row["n"])


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: DeliveryRow
    attempts: tuple[AttemptRow, ...]
    document: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            **self.delivery.as_json(),
            "attempt_log": [attempt.as_json() for attempt in self.attempts],
        }


def show(conn: psycopg.Connection[Row], which: str) -> list[DeliveryDetail]:
    """A delivery by its id, or every delivery of a CDR key (one per eMSP)."""
    where = "delivery_id = %s" if which.isdigit() else "cdr_key = %s"
    value: object = int(which) if which.isdigit() else which.upper()
    rows = conn.execute(
        f"SELECT {_COLUMNS}, document FROM cdr_delivery WHERE {where} ORDER BY delivery_id",
        (value,),
    ).fetchall()
    details = []
    for row in rows:
        document = row.pop("document")
        attempts = conn.execute(
            """SELECT attempt, request_id, url, started_at, finished_at, delivered,
                      http_status, ocpi_status, error
                 FROM cdr_delivery_attempt WHERE delivery_id = %s ORDER BY attempt""",
            (row["delivery_id"],),
        ).fetchall()
        details.append(
            DeliveryDetail(
                _row(row),
                tuple(AttemptRow(**a) for a in attempts),
                bytes(document),
            )
        )
    return details


def requeue(
    conn: psycopg.Connection[Row],
    delivery_ids: Sequence[int] = (),
    partner: str | None = None,
    state: DeliveryState = DeliveryState.DEAD,
) -> list[int]:
    """Queue deliveries again now, with a fresh run of attempts: the given ids, or every
    delivery in `state` (dead by default) of `partner` (or of every partner). Delivered ones
    are never touched. The ids re-queued."""
    if state in (DeliveryState.DELIVERED, DeliveryState.PULL):
        raise ValueError(f"a {state.value} CDR is never sent again")
    rows = conn.execute(
        """UPDATE cdr_delivery
              SET state = 'RETRYING', requeued_after = attempts, next_attempt_at = now()
            WHERE state NOT IN ('DELIVERED', 'PULL')
              AND (cardinality(%(ids)s::bigint[]) > 0 AND delivery_id = ANY(%(ids)s::bigint[])
                   OR cardinality(%(ids)s::bigint[]) = 0 AND state = %(state)s
                      AND (%(partner)s::text IS NULL OR emsp = %(partner)s))
        RETURNING delivery_id""",
        {"ids": list(delivery_ids), "state": state.value, "partner": partner},
    ).fetchall()
    return sorted(row["delivery_id"] for row in rows)
