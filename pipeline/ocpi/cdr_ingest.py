"""From a CDR the door admitted to a broker-acked record on cdr.submitted, many requests at a
time (the OCPI CDRs receiver's engine; pipeline/ocpi/cdrs.py is its HTTP side).

Requests queue their receipt; one loop takes whatever has queued (up to `BATCH_MAX`) and
handles it as a batch, so concurrent requests share each round trip (up to `IN_FLIGHT_MAX`
batches at once, each in these steps):

1. claim: the admitted receipts are inserted as their key's ACCEPTED one (one statement;
   a unique index lets exactly one request per CDR key win, across API processes);
   the losers are compared with the winner: the same content is a DUPLICATE (same Location),
   other content is REJECTED `cdr_id_conflict`; rejections from the door are recorded with
   them (one transaction), and those requests are answered at once;
2. publish: the accepted CDRs, in the cdr.submitted envelope the publish path builds
   (pipeline.publish.received_cdr_record: the token's partner as submitter, the CDR's bytes
   as received), signed with the hub's proof, go to
   the broker as one record batch per partition, and the loop waits for the acks
   (acks=all); a duplicate whose accepted receipt never reached the topic publishes it;
3. where each record went is recorded (ocpi_cdr_published), and only then is each
   request answered.

A request whose key repeats within a batch waits for the next one, so it is decided against
what the first committed (and, if that is still publishing, after it). The broker or
PostgreSQL failing fails the batch's open requests with `IngestUnavailable` (503, retry
later); a claim whose record never reached the topic is published by its partner's retry,
which finds it as a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final
from uuid import UUID

import psycopg
from aiokafka import AIOKafkaProducer

from pipeline.kafka.client import Signer, new_producer, send_located
from pipeline.publish import received_cdr_record
from schemas.ocpi.cdr import Cdr
from schemas.validation import Violation
from settlement.clearing.door import same_content
from settlement.clearing.reasons import Reason
from settlement.store import ocpi_cdrs
from settlement.store.db import Row, connect_async
from settlement.store.ocpi_cdrs import Outcome, Published, Receipt, Refusal

log = logging.getLogger(__name__)

BATCH_MAX: Final = 500  # requests per batch: one claim statement, one produce per partition
IN_FLIGHT_MAX: Final = 2  # batches between their claim and their answers at once
# How long a produce may wait for the broker's acks: the partner's request waits that long.
PUBLISH_TIMEOUT_MS: Final = 10_000
# The loop hands the producer whole batches (one per partition), so there is nothing to wait
# for: the producer's usual linger (pipeline.kafka.client.LINGER_MS, 5 ms) held every batch
# back that long (one batch's send took about 6.2 ms and 580 µs of CPU, its timers
# included; 0.2 ms and 120 µs without), and every request waits for its batch.
PRODUCE_LINGER_MS: Final = 0
# One record, envelope included: a body of BODY_BYTES_MAX (pipeline/ocpi/cdrs.py) fits.
RECORD_BYTES_MAX: Final = 1024 * 1024


class IngestUnavailable(Exception):
    """The broker or PostgreSQL failed while this request's batch was handled: the CDR is not
    on the topic (or its position is unknown). Answer 503; the partner sends it again."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of one request."""

    receipt: Receipt  # as recorded (a duplicate or a conflict is decided in the batch)
    published_now: bool  # this request put the CDR on the topic (201; else 200)


@dataclass(slots=True)
class _Pending:
    receipt: Receipt
    cdr: Cdr | None  # the admitted CDR (None: refused at the door)
    future: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CdrIngest:
    """The batch loop, its producer and its own PostgreSQL connection (as `roamclear_api`),
    started with the app and stopped with it; both servers are reached lazily, so the app
    (and the finance API) start while the broker is away.

    Up to `IN_FLIGHT_MAX` batches are under way at once: while one waits for the broker's
    acks, the next claims its receipts. The connection runs one statement (or transaction) at
    a time (`_db`); a request whose CDR key another batch of this process claimed and is
    still publishing waits for that publication (`_publishing`) before it is decided, so a
    duplicate never publishes a record that is about to reach the topic anyway."""

    def __init__(self, database_url: str, bootstrap_servers: str, topic: str, sign: Signer):
        self._database_url = database_url
        self._bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._sign = sign
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(IN_FLIGHT_MAX)
        self._db = asyncio.Lock()
        self._kafka = asyncio.Lock()
        self._publishing: dict[UUID, asyncio.Future[bool]] = {}  # claimed here, not yet acked
        self._conn: psycopg.AsyncConnection[Row] | None = None
        self._producer: AIOKafkaProducer | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="cdr-ingest")
        warm = loop.create_task(self._warm(), name="cdr-ingest-warm")
        self._batches.add(warm)  # stopped with the batches
        warm.add_done_callback(self._batches.discard)

    async def _warm(self) -> None:
        """Reach both servers now rather than on the first CDR; a server that is away is
        reached again by the first batch that needs it."""
        try:
            await self._started_producer()
            async with self._db:
                await self._connection()
        except Exception as exc:  # logged, not fatal: the finance API serves on
            log.warning("the CDR receiver cannot reach its servers yet: %s", exc)

    async def stop(self) -> None:
        for task in [t for t in (self._task, *self._batches) if t is not None]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            self._queue.get_nowait().future.set_exception(IngestUnavailable("the hub stops"))
        await self._reset()

    async def submit(self, receipt: Receipt, cdr: Cdr | None) -> Answer:
        """Record (and for an admitted CDR, publish) one receipt; returns once done."""
        pending = _Pending(receipt, cdr)
        self._queue.put_nowait(pending)
        return await pending.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carried: list[_Pending] = []
        while True:
            items = carried or [await self._queue.get()]
            await self._slots.acquire()  # meanwhile the queue fills: the next batch is larger
            while len(items) < BATCH_MAX and not self._queue.empty():
                items.append(self._queue.get_nowait())
            batch, carried = _split_repeats(items)
            task = loop.create_task(self._guarded(batch), name="cdr-ingest-batch")
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _guarded(self, batch: Sequence[_Pending]) -> None:
        try:
            await self._handle(batch)
        except BaseException as exc:  # the servers, not the input: fail the open requests
            stopping = isinstance(exc, asyncio.CancelledError)
            if not stopping:
                log.exception("CDR ingest batch of %d failed", len(batch))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(IngestUnavailable(str(exc) or "the hub stops"))
            if stopping:
                raise
            await self._reset()
        finally:
            self._slots.release()

    async def _handle(self, batch: Sequence[_Pending]) -> None:
        admitted = [p for p in batch if p.receipt.outcome is Outcome.ACCEPTED]
        async with self._db:
            conn = await self._connection()
            claimed = await ocpi_cdrs.claim(conn, [p.receipt for p in admitted])
            lost = [p for p in admitted if p.receipt.receipt_id not in claimed]
            accepted = await ocpi_cdrs.accepted_of(conn, [_key(p) for p in lost]) if lost else {}
        # no await between the claim and this: no other batch sees these claims unregistered
        publish = [(p, p.receipt.receipt_id) for p in admitted if p.receipt.receipt_id in claimed]
        for _, receipt_id in publish:
            self._publishing[receipt_id] = asyncio.get_running_loop().create_future()
        decided = [p for p in batch if p.receipt.outcome is not Outcome.ACCEPTED]
        for pending in lost:
            winner = accepted[_key(pending)]
            flight = self._publishing.get(winner.receipt_id)
            published = winner.published or (flight is not None and await asyncio.shield(flight))
            pending.receipt = _against(pending.receipt, winner)
            if pending.receipt.outcome is Outcome.DUPLICATE and not published:
                publish.append((pending, winner.receipt_id))  # its first publication failed
            decided.append(pending)
        if decided:
            async with self._db:
                await ocpi_cdrs.record(await self._connection(), [p.receipt for p in decided])
        publishing = {id(p) for p, _ in publish}
        for pending in decided:
            if id(pending) not in publishing:
                pending.future.set_result(Answer(pending.receipt, published_now=False))
        if publish:
            await self._publish(publish)

    async def _publish(self, publish: Sequence[tuple[_Pending, UUID]]) -> None:
        records, event_ids = [], []
        for pending, _ in publish:
            assert pending.cdr is not None
            receipt = pending.receipt
            key, value, event_id = received_cdr_record(pending.cdr, receipt.body, receipt.partner)
            records.append((self.topic, key, value))
            event_ids.append(event_id)
        try:
            producer = await self._started_producer()
            located = await send_located(producer, records, self._sign)
        except BaseException:
            self._landed([receipt_id for _, receipt_id in publish], False)
            raise
        published = [
            Published(receipt_id, self.topic, partition, offset, UUID(event_id))
            for (_, receipt_id), (partition, offset), event_id in zip(
                publish, located, event_ids, strict=True
            )
        ]
        try:
            async with self._db:
                await ocpi_cdrs.record_published(await self._connection(), published)
        except psycopg.Error:
            # acked, so the CDRs are safe on the topic and the partner must not send them
            # again; only where they went is not recorded (`counts` shows them unpublished)
            log.exception("CDRs acked by the broker, their positions not recorded: %s", published)
            await self._drop_connection()
        self._landed([receipt_id for _, receipt_id in publish], True)
        for pending, _ in publish:
            pending.future.set_result(Answer(pending.receipt, published_now=True))

    def _landed(self, receipt_ids: Sequence[UUID], published: bool) -> None:
        """The publication of these claims is over: tell whoever waits for it."""
        for receipt_id in receipt_ids:
            flight = self._publishing.pop(receipt_id, None)
            if flight is not None and not flight.done():
                flight.set_result(published)

    async def _connection(self) -> psycopg.AsyncConnection[Row]:
        """The connection (made if needed); call it holding `_db`."""
        if self._conn is None or self._conn.closed:
            self._conn = await connect_async(self._database_url, autocommit=True)
        return self._conn

    async def _started_producer(self) -> AIOKafkaProducer:
        async with self._kafka:
            if self._producer is None:
                producer = new_producer(
                    self._bootstrap_servers,
                    request_timeout_ms=PUBLISH_TIMEOUT_MS,
                    max_request_size=RECORD_BYTES_MAX,
                    linger_ms=PRODUCE_LINGER_MS,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _reset(self) -> None:
        """Drop both connections after a failure: the next batch makes new ones."""
        await self._drop_connection()
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


def _key(pending: _Pending) -> str:
    assert pending.receipt.cdr_key is not None
    return pending.receipt.cdr_key


def _split_repeats(items: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
    """The batch, and the requests whose CDR key came earlier in it (for the next batch)."""
    keys: set[str] = set()
    batch, later = [], []
    for pending in items:
        key = pending.receipt.cdr_key if pending.receipt.outcome is Outcome.ACCEPTED else None
        if key is not None and key in keys:
            later.append(pending)
            continue
        if key is not None:
            keys.add(key)
        batch.append(pending)
    return batch, later


def _against(receipt: Receipt, winner: ocpi_cdrs.AcceptedReceipt) -> Receipt:
    """A receipt that found its key accepted already: a duplicate, or a conflict."""
    if same_content(receipt.body, winner.body):
        return replace(receipt, outcome=Outcome.DUPLICATE, duplicate_of=winner.receipt_id)
    message = (
        f"CDR {receipt.cdr_key} was received before with other content, and CDRs are "
        "immutable in OCPI: send a credit CDR (credit=true, credit_reference_id) and a new CDR "
        "with a new id"
    )
    violation = Violation(path="id", rule="already used for another CDR", code="cdr_id_conflict")
    refusal = Refusal(Reason.CDR_ID_CONFLICT, message, (violation,))
    return replace(receipt, outcome=Outcome.REJECTED, refusal=refusal)
