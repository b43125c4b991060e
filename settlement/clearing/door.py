"""The OCPI receiver's door: what the hub decides about a CDR body before it reaches the topic.

A partner POSTs one CDR (OCPI 2.2.1 mod_cdrs); the door reads it as the clearing worker
would (settlement.clearing.decode: UTF-8 JSON with exact numbers, the OCPI CDR schema, no
NUL, a non-empty id), bounds its work (`CHARGING_PERIODS_MAX`), and checks that the caller
owns it. Everything else (plausibility, tariffs, agreements, dedupe against the ledger) stays
the worker's: the door only keeps out what the partner must fix and resend. Whether a CDR was
received before is not the door's to say (it needs the store): `same_content` compares two
bodies as the worker's dedupe does.

    admit(b'{"country_code": "NL", "party_id": "TNM", "id": "CDR-1", ...}', NL*TNM)
    -> Admitted(cdr, key="NL*TNM*CDR-1")
    admit(b'{"country_code": "DE", ...}', NL*TNM)
    -> Refused(not_owner, "the CDR belongs to DE*ABC; this token speaks for NL*TNM", …)

Every violation is reported at once, each with its JSON path relative to the CDR
(`charging_periods[0].dimensions[1].volume: must be >= 0`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import Violation, parse_model
from settlement.clearing.decode import NotJson, key_of, parse_cdr_payload, read_json
from settlement.clearing.identity import content_hash
from settlement.clearing.outcome import ClaimedCdrKey
from settlement.clearing.reasons import Reason

# Periods per CDR the receiver takes: a bound on the work one request can cause (rating is
# linear in periods). Real CDRs have a few dozen; 1,000 is over four days in 6-minute steps.
# The OCPI schema's own bound (schemas.ocpi.cdr.CHARGING_PERIODS_MAX, 10,000) still holds for
# records produced straight to Kafka.
CHARGING_PERIODS_MAX: Final = 1_000


@dataclass(frozen=True, slots=True)
class Admitted:
    """A CDR the caller owns, schema-valid: it goes to the topic (unless a duplicate)."""

    cdr: Cdr
    key: CdrKey


@dataclass(frozen=True, slots=True)
class Refused:
    """A body the door keeps out, with the reason and every violation."""

    reason: Reason
    message: str
    violations: tuple[Violation, ...] = ()
    key: ClaimedCdrKey | None = None  # the CDR key, when the body names one


def _too_many_periods(payload: object) -> tuple[Violation, ...]:
    periods = payload.get("charging_periods") if isinstance(payload, dict) else None
    if isinstance(periods, list) and len(periods) > CHARGING_PERIODS_MAX:
        rule = (
            f"at most {CHARGING_PERIODS_MAX} elements (the hub's limit per CDR); got {len(periods)}"
        )
        return (Violation(path="charging_periods", rule=rule, code="too_long"),)
    return ()


def schema_refusal(violations: tuple[Violation, ...], key: ClaimedCdrKey | None) -> Refused:
    return Refused(Reason.SCHEMA_INVALID, "; ".join(str(v) for v in violations), violations, key)


def admit(body: bytes, caller: PartyRef) -> Admitted | Refused:
    """Admit one CDR body from `caller` (the token's partner), or refuse it with why."""
    try:
        payload = read_json(body)
    except NotJson as exc:
        return Refused(Reason.MALFORMED_JSON, str(exc))
    key = key_of(payload)
    too_many = _too_many_periods(payload)
    if too_many:  # before the schema: validating 10,000 periods is the work this bounds
        return schema_refusal(too_many, key)
    parsed = parse_cdr_payload(payload, body, "")
    if isinstance(parsed, tuple):
        return schema_refusal(parsed, key)
    cdr_key = CdrKey.of(parsed)
    if cdr_key.party != caller:
        return Refused(
            Reason.NOT_OWNER,
            f"the CDR belongs to {cdr_key.party} (country_code, party_id); this token "
            f"speaks for {caller} only",
            (Violation(path="party_id", rule=f"must be {caller}'s own", code="not_owner"),),
            ClaimedCdrKey(str(cdr_key)),
        )
    return Admitted(parsed, cdr_key)


def same_content(body: bytes, other: bytes) -> bool:
    """Two admitted bodies hold the same CDR content (settlement.clearing.identity: key order,
    whitespace and trailing zeros aside), as the clearing worker's dedupe would say."""
    if body == other:
        return True
    first, second = read_json(body), read_json(other)
    try:
        hashes = [content_hash(parse_model(Cdr, document)) for document in (first, second)]
    except (TypeError, ValueError, RecursionError):
        # a value the content hash cannot take (an integer beyond 64 bits in a field OCPI
        # leaves unbounded, as settlement.clearing.decide says): not the same content
        return False
    return hashes[0] == hashes[1]
