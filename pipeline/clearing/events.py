"""The events the clearing agent emits, as (topic, key, value) records.

Output topics are keyed by the canonical CDR key (a credit by the CDR it credits): this is
where records are re-keyed, whatever key the partner used on cdr.submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from pipeline.topics import Topic, topic_name
from schemas.events import (
    CdrRated,
    EnvelopeHeader,
    LedgerTransaction,
    RejectedEvent,
    Rejection,
    envelope_bytes,
    new_envelope,
    random_event_id,
)
from schemas.hub.party import CdrKey, PartyRef
from schemas.wire import encode_json_bytes, to_ocpi_json
from settlement.clearing.outcome import Booked, Rejected
from settlement.rating.report import rated_cdr_json
from settlement.store.clearing_rows import payload_text
from settlement.store.clearing_store import SubmittedRecord

# Apache Kafka refuses records over message.max.bytes (1 MiB by default), and a refused
# record fails its whole batch on every redelivery; events stay well below it.
EVENT_BYTES_MAX: Final = 900 * 1024
REJECTED_PAYLOAD_BYTES_MAX: Final = 512 * 1024
REJECTED_VIOLATIONS_MAX: Final = 200


def _head(envelope: type[EnvelopeHeader], submitter: PartyRef, now: datetime) -> bytes:
    """`envelope_bytes`' text between the event id and the payload."""
    marker = "00000000-0000-4000-8000-000000000000"
    text = envelope_bytes(
        envelope, submitter=submitter, payload=None, occurred_at=now, event_id=UUID(marker)
    )
    start = len(f'{{"event_id":"{marker}')
    assert text.startswith(b'{"event_id":"') and text.endswith(b":null}"), text
    return text[start:-6] + b":"


def _envelope(head: bytes, payload: dict[str, Any]) -> bytes:
    return b"".join(
        (b'{"event_id":"', random_event_id().encode(), head, encode_json_bytes(payload), b"}")
    )


@dataclass(frozen=True, slots=True)
class OutputRecord:
    topic: str
    key: bytes
    value: bytes


class EventWriter:
    """Builds output records for one topic prefix, with the hub as submitter."""

    def __init__(self, prefix: str, hub: PartyRef) -> None:
        self.rated_topic = topic_name(prefix, Topic.CDR_RATED)
        self.transactions_topic = topic_name(prefix, Topic.LEDGER_TRANSACTIONS)
        self.rejected_topic = topic_name(prefix, Topic.REJECTED)
        self.hub = hub
        self._heads_at: datetime | None = None
        self._heads: tuple[bytes, bytes] = (b"", b"")

    def _envelope_heads(self, now: datetime) -> tuple[bytes, bytes]:
        """What follows the event id in a `cdr.rated` and a `ledger.transaction` envelope up
        to the payload: the same for every event of a batch (one `now`)."""
        if now != self._heads_at:
            self._heads = (_head(CdrRated, self.hub, now), _head(LedgerTransaction, self.hub, now))
            self._heads_at = now
        return self._heads

    def booked(self, booked: Booked, now: datetime) -> list[OutputRecord]:
        """Both envelopes written as `envelope_bytes` writes them (a unit test holds them
        equal), each payload in one orjson call: the booking's two events, thousands a
        second, share everything but their ids and payloads."""
        transaction = booked.transaction
        key = str(CdrKey.partition_key(booked.cdr)).encode()
        rated_head, transaction_head = self._envelope_heads(now)
        records = []
        if booked.rated is not None:
            rated: dict[str, Any] = rated_cdr_json(booked.rated)
            rated["cdr_key"] = str(transaction.cdr_key)
            rated["transaction_id"] = transaction.transaction_id
            if booked.agreement is not None:
                rated["agreement"] = {
                    "agreement_id": booked.agreement.agreement_id,
                    "version": booked.agreement.version,
                }
            envelope = _envelope(rated_head, rated)
            if len(envelope) > EVENT_BYTES_MAX:
                # thousands of charging periods: the event keeps the totals and says how
                # many periods it leaves out (`roamclear rate` shows them from the archive)
                rated["periods_omitted"] = len(rated["periods"])
                rated["periods"] = []
                envelope = _envelope(rated_head, rated)
            records.append(OutputRecord(self.rated_topic, key, envelope))
        records.append(
            OutputRecord(
                self.transactions_topic, key, _envelope(transaction_head, transaction.as_data())
            )
        )
        return records

    def rejected(self, rejected: Rejected, record: SubmittedRecord, now: datetime) -> OutputRecord:
        payload = payload_text(record.value)
        encoded = payload.encode()
        truncated = len(encoded) > REJECTED_PAYLOAD_BYTES_MAX
        if truncated:
            payload = encoded[:REJECTED_PAYLOAD_BYTES_MAX].decode("utf-8", errors="ignore")
        rejection = Rejection(
            reason_code=str(rejected.reason),
            message=rejected.message[:2000],
            stage=rejected.stage.value,
            violations=rejected.violations[:REJECTED_VIOLATIONS_MAX],
            violations_omitted=max(0, len(rejected.violations) - REJECTED_VIOLATIONS_MAX),
            original_payload=payload,
            original_payload_truncated=truncated,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
        )
        envelope = new_envelope(
            RejectedEvent, submitter=self.hub, payload=rejection, occurred_at=now
        )
        key = (rejected.cdr_key or "").encode() or (record.key or b"")
        return OutputRecord(self.rejected_topic, key, to_ocpi_json(envelope))
