"""Event envelopes: the value of every roamclear Kafka record (DESIGN.md, "Topics and events").

    {"event_id": "<uuid>", "type": "cdr.submitted", "version": 1,
     "occurred_at": "2025-03-01T12:00:00Z",
     "submitter": {"country_code": "NL", "party_id": "TNM"},
     "cdr": {...}}

One class per event type; the payload sits under the name in `EVENT_PAYLOAD`. Build one with
`new_envelope(CdrSubmitted, submitter=..., payload=cdr)`, write it with
`schemas.wire.to_ocpi_json`, read it with `parse_envelope(raw)`.

A submitted CDR may be invalid. `split_envelope` validates only the envelope's own fields and
returns the payload as decoded JSON, so the clearing agent can report the payload's
violations in a rejection together with the original bytes.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field

from schemas.base import HubModel
from schemas.hub.agreement import Agreement
from schemas.hub.ledger import Transaction
from schemas.hub.party import PartyRef
from schemas.hub.tariff_deletion import TariffDeletionNotice
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.location import Location
from schemas.ocpi.session import Session
from schemas.ocpi.tariff import Tariff
from schemas.ocpi.types import DateTime, format_datetime
from schemas.validation import RawInput, SchemaInvalid, Violation, parse_model
from schemas.wire import encode_json_bytes

ENVELOPE_VERSION: Final = 1
ORIGINAL_PAYLOAD_CHARS_MAX: Final = 1_000_000  # a rejection keeps at most this much input


class EventType(StrEnum):
    """The `type` of an envelope."""

    CDR_SUBMITTED = "cdr.submitted"  # a CDR as a partner sent it
    CDR_RATED = "cdr.rated"  # a CDR with the hub's price and the inputs that priced it
    LEDGER_TRANSACTION = "ledger.transaction"  # a balanced transaction to book
    REJECTED = "rejected"  # an input that ends here, with the reason
    TARIFF_PUBLISHED = "tariff.published"  # a CPO tariff version
    TARIFF_DELETED = "tariff.deleted"  # a CPO deleted a tariff (same topic, same key)
    AGREEMENT_PUBLISHED = "agreement.published"  # a roaming agreement version
    LOCATION_PUBLISHED = "location.published"  # a location (for its time zone)
    SESSION_EVENT = "session.event"  # a session update


# Event type -> name of the payload field in the envelope.
EVENT_PAYLOAD: Final[Mapping[EventType, str]] = {
    EventType.CDR_SUBMITTED: "cdr",
    EventType.CDR_RATED: "rated_cdr",
    EventType.LEDGER_TRANSACTION: "transaction",
    EventType.REJECTED: "rejection",
    EventType.TARIFF_PUBLISHED: "tariff",
    EventType.TARIFF_DELETED: "tariff_deletion",
    EventType.AGREEMENT_PUBLISHED: "agreement",
    EventType.LOCATION_PUBLISHED: "location",
    EventType.SESSION_EVENT: "session",
}


class EnvelopeHeader(HubModel):
    """The fields every envelope has."""

    event_type: ClassVar[EventType]

    event_id: UUID
    type: str  # narrowed to one value by each envelope class
    version: Literal[1] = ENVELOPE_VERSION
    occurred_at: DateTime
    submitter: PartyRef


class Rejection(HubModel):
    """Why an input was not booked. `original_payload` is the input as received (text,
    since it may not be JSON at all)."""

    reason_code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    message: Annotated[str, Field(max_length=2000)]
    stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    violations: tuple[Violation, ...] = ()
    # how many violations the event leaves out (the rejection table keeps them all)
    violations_omitted: Annotated[int, Field(ge=0)] = 0
    original_payload: Annotated[str, Field(max_length=ORIGINAL_PAYLOAD_CHARS_MAX)]
    # the payload was cut to keep the event within a broker's record size (the raw archive
    # and the rejection table keep the whole input)
    original_payload_truncated: bool = False
    source_topic: str | None = None
    source_partition: Annotated[int, Field(ge=0)] | None = None
    source_offset: Annotated[int, Field(ge=0)] | None = None


class CdrSubmitted(EnvelopeHeader):
    """roamclear.cdr.submitted: public contract, partners may produce it directly."""

    event_type = EventType.CDR_SUBMITTED
    type: Literal["cdr.submitted"] = "cdr.submitted"
    cdr: Cdr


class CdrRated(EnvelopeHeader):
    """roamclear.cdr.rated. The rated CDR's shape belongs to settlement/ (loose for now)."""

    event_type = EventType.CDR_RATED
    type: Literal["cdr.rated"] = "cdr.rated"
    rated_cdr: dict[str, Any]


class LedgerTransaction(EnvelopeHeader):
    """roamclear.ledger.transactions: one balanced transaction."""

    event_type = EventType.LEDGER_TRANSACTION
    type: Literal["ledger.transaction"] = "ledger.transaction"
    transaction: Transaction


# The event that reports clearing's outcome settlement.clearing.outcome.Rejected (and the
# session agent's): named apart from it, published under its schema name "Rejected".
class RejectedEvent(EnvelopeHeader):
    """roamclear.rejected: a dead letter with a machine-readable reason."""

    model_config = ConfigDict(title="Rejected")
    event_type = EventType.REJECTED
    type: Literal["rejected"] = "rejected"
    rejection: Rejection


class TariffPublished(EnvelopeHeader):
    """roamclear.tariff.published: a CPO tariff version."""

    event_type = EventType.TARIFF_PUBLISHED
    type: Literal["tariff.published"] = "tariff.published"
    tariff: Tariff


class TariffDeleted(EnvelopeHeader):
    """roamclear.tariff.published: a CPO deleted a tariff. Keyed like its versions, so the
    compacted topic keeps the deletion as the key's latest state."""

    event_type = EventType.TARIFF_DELETED
    type: Literal["tariff.deleted"] = "tariff.deleted"
    tariff_deletion: TariffDeletionNotice


class AgreementPublished(EnvelopeHeader):
    """roamclear.agreement.published: a roaming agreement version."""

    event_type = EventType.AGREEMENT_PUBLISHED
    type: Literal["agreement.published"] = "agreement.published"
    agreement: Agreement


class LocationPublished(EnvelopeHeader):
    """roamclear.location.published: a CPO location."""

    event_type = EventType.LOCATION_PUBLISHED
    type: Literal["location.published"] = "location.published"
    location: Location


class SessionEvent(EnvelopeHeader):
    """roamclear.session.events: a session as last sent."""

    event_type = EventType.SESSION_EVENT
    type: Literal["session.event"] = "session.event"
    session: Session


Envelope = (
    CdrSubmitted
    | CdrRated
    | LedgerTransaction
    | RejectedEvent
    | TariffPublished
    | TariffDeleted
    | AgreementPublished
    | LocationPublished
    | SessionEvent
)
ENVELOPES: Final[Mapping[EventType, type[EnvelopeHeader]]] = {
    cls.event_type: cls
    for cls in (
        CdrSubmitted,
        CdrRated,
        LedgerTransaction,
        RejectedEvent,
        TariffPublished,
        TariffDeleted,
        AgreementPublished,
        LocationPublished,
        SessionEvent,
    )
}

EnvelopeT = TypeVar("EnvelopeT", bound=EnvelopeHeader)


def new_envelope(
    envelope: type[EnvelopeT],
    *,
    submitter: PartyRef,
    payload: object,
    occurred_at: datetime | None = None,
    event_id: UUID | None = None,
) -> EnvelopeT:
    """A new envelope of the given class, with a fresh uuid4 and the current time."""
    return envelope.model_validate(
        {
            "event_id": event_id or uuid4(),
            "occurred_at": occurred_at or datetime.now(UTC),
            "submitter": submitter,
            EVENT_PAYLOAD[envelope.event_type]: payload,
        }
    )


# Event ids only need to be unique, not unpredictable: a generator seeded from the OS (and
# reseeded in a forked child, which would otherwise repeat its parent's ids) gives 122
# random bits like uuid4 at a third of its cost (no system call per id).
_EVENT_IDS = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _EVENT_IDS.seed(os.urandom(32)))
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version nibble 4, RFC 4122 variant bits 10
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def random_event_id() -> str:
    """A random (version 4) UUID as text."""
    digits = "%032x" % (_EVENT_IDS.getrandbits(128) & _VERSION_MASK | _VERSION_4)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


@lru_cache(maxsize=16)
def _moment_text(moment: datetime) -> str:
    """A batch's events share one `occurred_at`: formatted once, not per event."""
    return format_datetime(moment)


def envelope_bytes(
    envelope: type[EnvelopeHeader],
    *,
    submitter: PartyRef,
    payload: object,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> bytes:
    """The JSON `to_ocpi_json(new_envelope(...))` writes, without building the model.

    For the clearing agent's output, thousands per second: `payload` is a model or plain
    data that is already valid (a `Transaction`, a rated CDR's JSON-ready dict), so
    validating the envelope around it again would only cost time. A unit test holds the two
    paths byte for byte equal.
    """
    if isinstance(payload, Transaction):
        payload = payload.as_data()
    elif isinstance(payload, HubModel):
        payload = payload.model_dump(mode="python", exclude_none=True)
    return encode_json_bytes(
        {
            "event_id": str(event_id) if event_id else random_event_id(),
            "type": envelope.event_type.value,
            "version": ENVELOPE_VERSION,
            "occurred_at": _moment_text(occurred_at),
            "submitter": {"country_code": submitter.country_code, "party_id": submitter.party_id},
            EVENT_PAYLOAD[envelope.event_type]: payload,
        }
    )


class RawEnvelope(EnvelopeHeader):
    """An envelope's own fields and `type`; the payload stays undecoded in `model_extra`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: EventType

    @property
    def payload(self) -> Any:
        """The payload as decoded JSON (None when absent)."""
        return (self.model_extra or {}).get(EVENT_PAYLOAD[self.type])


def split_envelope(raw: RawInput) -> tuple[RawEnvelope, Any]:
    """Validate an envelope's own fields only; return them and the raw payload (decoded
    JSON, exact Decimals). Raises SchemaInvalid for a bad header."""
    envelope = parse_model(RawEnvelope, raw)
    return envelope, envelope.payload


def parse_envelope(raw: RawInput) -> EnvelopeHeader:
    """Any envelope, payload included, as its class (see `ENVELOPES`)."""
    header = parse_model(RawEnvelope, raw)
    model = ENVELOPES.get(header.type)
    if model is None:  # pragma: no cover - _LooseHeader already checks the enum
        raise SchemaInvalid(
            "Envelope", [Violation(path="type", rule="unknown event type", code="enum")]
        )
    return parse_model(model, raw)
