"""The events the clearing agent emits, as (topic, key, value) records.

Output topics are keyed by the canonical CDR key (a credit by the CDR it credits): this is
where records are re-keyed, whatever key the partner used on cdr.submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pipeline.topics import Topic, topic_name
from schemas.events import (
    CdrRated,
    LedgerTransaction,
    RejectedEvent,
    Rejection,
    envelope_bytes,
    new_envelope,
)
from schemas.hub.party import CdrKey, PartyRef
from schemas.wire import to_ocpi_json
from settlement.clearing.outcome import Booked, Rejected
from settlement.rating.report import rated_cdr_json
from settlement.store.clearing_rows import payload_text
from settlement.store.clearing_store import SubmittedRecord

# Apache Kafka refuses records over message.max.bytes (1 MiB by default), and a refused
# record fails its whole batch on every redelivery; events stay well below it.
EVENT_BYTES_MAX: Final = 900 * 1024
REJECTED_PAYLOAD_BYTES_MAX: Final = 512 * 1024
REJECTED_VIOLATIONS_MAX: Final = 200


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

    def booked(self, booked: Booked, now: datetime) -> list[OutputRecord]:
        key = str(CdrKey.partition_key(booked.cdr)).encode()
        records = []
        if booked.rated is not None:
            rated: dict[str, Any] = rated_cdr_json(booked.rated)
            rated["cdr_key"] = str(booked.transaction.cdr_key)
            rated["transaction_id"] = booked.transaction.transaction_id
            if booked.agreement is not None:
                rated["agreement"] = {
                    "agreement_id": booked.agreement.agreement_id,
                    "version": booked.agreement.version,
                }
            envelope = envelope_bytes(CdrRated, submitter=self.hub, payload=rated, occurred_at=now)
            if len(envelope) > EVENT_BYTES_MAX:
                # thousands of charging periods: the event keeps the totals and says how
                # many periods it leaves out (`roamclear rate` shows them from the archive)
                rated["periods_omitted"] = len(rated["periods"])
                rated["periods"] = []
                envelope = envelope_bytes(
                    CdrRated, submitter=self.hub, payload=rated, occurred_at=now
                )
            records.append(OutputRecord(self.rated_topic, key, envelope))
        transaction = envelope_bytes(
            LedgerTransaction, submitter=self.hub, payload=booked.transaction, occurred_at=now
        )
        records.append(OutputRecord(self.transactions_topic, key, transaction))
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
