"""Rejection reason codes: every way a submitted event can end as a rejection.

Stable, machine-readable codes (partners and ops filter on them); each with the stage that
decides it and what an operator should do.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Where an event was decided: at the OCPI receiver's door, or in the clearing agent."""

    # the OCPI receiver, before the topic: such a rejection has no archived record (it never
    # entered cdr.submitted, so invariant 2 does not count it; `counts` does, separately)
    INGEST = "ingest"
    AUTHENTICATE = "authenticate"  # the proof of who submitted it (settlement.clearing.proof)
    DECODE = "decode"  # bytes -> envelope -> CDR
    VALIDATE = "validate"  # plausibility and ownership
    DEDUPE = "dedupe"  # against what the ledger already holds
    RATE = "rate"  # pricing against the tariff
    ALLOCATE = "allocate"  # agreement and split
    CLEAR = "clear"  # somewhere in the decision, when the hub itself failed (internal_error)


class Reason(StrEnum):
    """Why an event was rejected. The comment says what fixes it."""

    # no valid proof of the submitter (missing, unknown or revoked key, signature that does
    # not match, or a partner key used for another party): the producer must sign its records
    UNAUTHENTICATED_SUBMITTER = "unauthenticated_submitter"
    MALFORMED_JSON = "malformed_json"  # not JSON: the partner must re-send
    ENVELOPE_INVALID = "envelope_invalid"  # envelope fields wrong: fix the producer
    WRONG_EVENT_TYPE = "wrong_event_type"  # not a cdr.submitted event on this topic
    SCHEMA_INVALID = "schema_invalid"  # CDR violates OCPI 2.2.1: partner fixes and re-sends
    IMPLAUSIBLE = "implausible"  # fails plausibility checks (times, volumes, totals)
    UNKNOWN_SUBMITTER = "unknown_submitter"  # the CPO is not a registered partner
    NOT_OWNER = "not_owner"  # submitter does not own the CDR's country_code/party_id
    UNKNOWN_EMSP = "unknown_emsp"  # the token's eMSP is not a registered partner
    CDR_ID_CONFLICT = "cdr_id_conflict"  # id reused with other content: send a credit CDR
    CREDIT_REFERENCE_UNKNOWN = "credit_reference_unknown"  # credits a CDR never booked
    CREDIT_ALREADY_APPLIED = "credit_already_applied"  # the original is already reversed
    CREDIT_OF_CREDIT = "credit_of_credit"  # a credit may only reverse a charge
    NO_TARIFF = "no_tariff"  # no registered tariff version applies: publish it, retry
    NO_AGREEMENT = "no_agreement"  # no agreement between the parties: set one, retry
    CURRENCY_MISMATCH = "currency_mismatch"  # CDR, tariff and agreement currencies differ
    PRICE_DISCREPANCY = "price_discrepancy"  # declared and hub price differ beyond tolerance
    RATING_FAILED = "rating_failed"  # the engine could not price it (see message)
    INTERNAL_ERROR = "internal_error"  # the hub failed on this record (logged): fix, retry
    # the Kafka client cannot read the record (a header name that is not UTF-8, a corrupt
    # or damaged batch): the partner re-sends it as a well-formed record
    UNREADABLE_RECORD = "unreadable_record"
    # a body over the OCPI receiver's size limit, refused unread (no real CDR is that large)
    BODY_TOO_LARGE = "body_too_large"


# Reasons an operator can fix on the hub side and then `roamclear rejected retry`.
RETRYABLE = frozenset(
    {
        Reason.NO_TARIFF,
        Reason.NO_AGREEMENT,
        Reason.UNKNOWN_SUBMITTER,
        Reason.UNKNOWN_EMSP,
        Reason.CREDIT_REFERENCE_UNKNOWN,
        Reason.RATING_FAILED,
        Reason.PRICE_DISCREPANCY,
        Reason.INTERNAL_ERROR,
    }
)
