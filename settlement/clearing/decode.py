"""Decoding a cdr.submitted record: bytes → envelope → OCPI CDR, or a rejection.

The envelope's own fields are checked first, then the CDR payload; every schema violation
is reported with its JSON path (`cdr.charging_periods[2].dimensions[0].volume: must be >= 0`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schemas.base import loads_exact
from schemas.events import EventType, RawEnvelope
from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import SchemaInvalid, Violation, parse_model
from settlement.clearing.fast_decode import decode_fast
from settlement.clearing.outcome import ClaimedCdrKey, Rejected
from settlement.clearing.reasons import Reason, Stage

EMPTY_RULE = "must not be empty"
UTF8 = frozenset({"utf-8", "utf-8-sig"})  # a UTF-8 byte order mark is still UTF-8


@dataclass(frozen=True, slots=True)
class Decoded:
    """A schema-valid submission."""

    event_id: str
    submitter: PartyRef
    cdr: Cdr


def _prefixed(violations: tuple[Violation, ...], prefix: str) -> tuple[Violation, ...]:
    if not prefix:
        return violations
    return tuple(
        Violation(path=f"{prefix}.{v.path}" if v.path != "$" else prefix, rule=v.rule, code=v.code)
        for v in violations
    )


class NotJson(ValueError):
    """A value that is not UTF-8 JSON we read; the message says why (for the partner)."""


def read_json(value: bytes) -> Any:
    """UTF-8 JSON with exact Decimals (schemas.base.loads_exact), or NotJson saying why."""
    # the stdlib parser (the fallback that explains malformed text) would read UTF-16 and
    # UTF-32 too, and the CDR would be booked from bytes no other consumer of the topic reads
    encoding = json.detect_encoding(value)
    if encoding not in UTF8:
        raise NotJson(
            f"not UTF-8: the value is {encoding.upper()} text; values are UTF-8 JSON by "
            "contract (RFC 8259 section 8.1): re-send it encoded as UTF-8"
        )
    try:
        return loads_exact(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotJson(f"not JSON: {exc}") from None
    except RecursionError:
        raise NotJson("not JSON we read: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise NotJson(f"not JSON we read: {exc}") from None


def parse_cdr_payload(payload: Any, value: bytes, prefix: str) -> Cdr | tuple[Violation, ...]:
    """The CDR in a decoded payload, or every violation, each path under `prefix` ("cdr" in
    an envelope; "" for a bare CDR, as the OCPI receiver gets it). `value` is the raw JSON
    the payload was decoded from."""
    if b"\\u0000" in value:  # the only way a NUL gets into valid JSON
        nul = _nul_violations(payload, prefix)
        if nul:
            # OCPI text never needs U+0000, and PostgreSQL can neither store nor book it
            return nul
    try:
        cdr = parse_model(Cdr, payload)
    except SchemaInvalid as exc:
        return _prefixed(tuple(exc.violations), prefix)
    return _empty_identity(cdr, prefix) or cdr


def decode(value: bytes | None) -> Decoded | Rejected:
    """The record's CDR, or why it is refused. A plain valid record is read by
    `fast_decode` (the same values, at C speed); every other by `decode_validated`."""
    if value is not None:
        fast = decode_fast(value)
        if fast is not None:
            return Decoded(event_id=fast[0], submitter=fast[1], cdr=fast[2])
    return decode_validated(value)


def decode_validated(value: bytes | None) -> Decoded | Rejected:
    """`decode` by the pydantic models alone: their verdict, values and messages."""
    if value is None:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, "the record has no value")
    try:
        document = read_json(value)
    except NotJson as exc:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, str(exc))
    try:
        envelope = parse_model(RawEnvelope, document)
    except SchemaInvalid as exc:
        return Rejected(Reason.ENVELOPE_INVALID, Stage.DECODE, exc.as_text(), tuple(exc.violations))
    if envelope.type is not EventType.CDR_SUBMITTED:
        return Rejected(
            Reason.WRONG_EVENT_TYPE,
            Stage.DECODE,
            f"expected a cdr.submitted event, got {envelope.type.value}",
            submitter=envelope.submitter,
        )
    payload = envelope.payload
    submitter = envelope.submitter
    if payload is None:
        missing = Violation(path="cdr", rule="field required", code="missing")
        return _schema_invalid((missing,), submitter)
    parsed = parse_cdr_payload(payload, value, "cdr")
    if isinstance(parsed, tuple):
        # a CDR without an id (or a credit naming none) is rejected without a key
        keyless = any(v.rule == EMPTY_RULE for v in parsed)
        return _schema_invalid(parsed, submitter, None if keyless else key_of(payload))
    return Decoded(event_id=str(envelope.event_id), submitter=envelope.submitter, cdr=parsed)


def _nul_paths(value: object, path: str) -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            found += [key_path] if "\x00" in str(key) else []
            found += _nul_paths(item, key_path)
        return found
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _nul_paths(item, f"{path}[{index}]")]
    return []


def _nul_violations(payload: object, prefix: str) -> tuple[Violation, ...]:
    """Every place in the CDR where a text (or a key) holds U+0000."""
    return tuple(
        Violation(path=path or "$", rule="must not contain the NUL character (U+0000)", code="nul")
        for path in _nul_paths(payload, prefix)
    )


def _schema_invalid(
    violations: tuple[Violation, ...], submitter: PartyRef, cdr_key: ClaimedCdrKey | None = None
) -> Rejected:
    return Rejected(
        Reason.SCHEMA_INVALID,
        Stage.DECODE,
        "; ".join(str(v) for v in violations),
        violations,
        submitter=submitter,
        cdr_key=cdr_key,
    )


def _empty_identity(cdr: Cdr, prefix: str) -> tuple[Violation, ...]:
    """OCPI's CiString allows "", but a CDR without an id (or a credit naming none) has no
    canonical key to book, dedupe or reverse by."""
    at = f"{prefix}." if prefix else ""
    violations = []
    if not cdr.id:
        violations.append(Violation(path=f"{at}id", rule=EMPTY_RULE, code="too_short"))
    if cdr.is_credit and cdr.credit_reference_id == "":
        violations.append(
            Violation(path=f"{at}credit_reference_id", rule=EMPTY_RULE, code="too_short")
        )
    return tuple(violations)


def key_of(payload: object) -> ClaimedCdrKey | None:
    """The canonical key of an invalid CDR, when its identifying fields are readable."""
    if not isinstance(payload, dict):
        return None
    parts = [payload.get(name) for name in ("country_code", "party_id", "id")]
    if all(isinstance(part, str) and part for part in parts):
        return ClaimedCdrKey("*".join(str(part).upper() for part in parts))
    return None
