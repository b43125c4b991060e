"""Decoding a cdr.submitted record: bytes → envelope → OCPI CDR, or a rejection.

The envelope's own fields are checked first, then the CDR payload; every schema violation
is reported with its JSON path (`cdr.charging_periods[2].dimensions[0].volume: must be >= 0`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from schemas.base import loads_exact
from schemas.events import EventType, RawEnvelope
from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import SchemaInvalid, Violation, parse_model
from settlement.clearing.outcome import Rejected
from settlement.clearing.reasons import Reason, Stage

UTF8 = frozenset({"utf-8", "utf-8-sig"})  # a UTF-8 byte order mark is still UTF-8


@dataclass(frozen=True, slots=True)
class Decoded:
    """A schema-valid submission."""

    event_id: str
    submitter: PartyRef
    cdr: Cdr


def _prefixed(violations: tuple[Violation, ...], prefix: str) -> tuple[Violation, ...]:
    return tuple(
        Violation(path=f"{prefix}.{v.path}" if v.path != "$" else prefix, rule=v.rule, code=v.code)
        for v in violations
    )


def decode(value: bytes | None) -> Decoded | Rejected:
    if value is None:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, "the record has no value")
    # the stdlib parser (the fallback that explains malformed text) would read UTF-16 and
    # UTF-32 too, and the CDR would be booked from bytes no other consumer of the topic reads
    encoding = json.detect_encoding(value)
    if encoding not in UTF8:
        return Rejected(
            Reason.MALFORMED_JSON,
            Stage.DECODE,
            f"not UTF-8: the value is {encoding.upper()} text; values are UTF-8 JSON by "
            "contract (RFC 8259 section 8.1): re-send it encoded as UTF-8",
        )
    try:
        document = loads_exact(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, f"not JSON: {exc}")
    except RecursionError:
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, "not JSON we read: nested too deeply")
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return Rejected(Reason.MALFORMED_JSON, Stage.DECODE, f"not JSON we read: {exc}")
    try:
        envelope = parse_model(RawEnvelope, document)
    except SchemaInvalid as exc:
        return Rejected(Reason.ENVELOPE_INVALID, Stage.DECODE, exc.as_text(), tuple(exc.violations))
    if envelope.type is not EventType.CDR_SUBMITTED:
        return Rejected(
            Reason.WRONG_EVENT_TYPE,
            Stage.DECODE,
            f"expected a cdr.submitted event, got {envelope.type.value}",
            submitter=str(envelope.submitter),
        )
    payload = envelope.payload
    submitter = str(envelope.submitter)
    if payload is None:
        missing = Violation(path="cdr", rule="field required", code="missing")
        return _schema_invalid((missing,), submitter)
    if b"\\u0000" in value:  # the only way a NUL gets into valid JSON
        nul = _nul_violations(payload)
        if nul:
            # OCPI text never needs U+0000, and PostgreSQL can neither store nor book it
            return _schema_invalid(nul, submitter, _key_of(payload))
    try:
        cdr = parse_model(Cdr, payload)
    except SchemaInvalid as exc:
        violations = _prefixed(tuple(exc.violations), "cdr")
        return _schema_invalid(violations, submitter, _key_of(payload))
    empty = _empty_identity(cdr)
    if empty:
        return _schema_invalid(empty, submitter)
    return Decoded(event_id=str(envelope.event_id), submitter=envelope.submitter, cdr=cdr)


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


def _nul_violations(payload: object) -> tuple[Violation, ...]:
    """Every place in the CDR where a text (or a key) holds U+0000."""
    return tuple(
        Violation(path=path, rule="must not contain the NUL character (U+0000)", code="nul")
        for path in _nul_paths(payload, "cdr")
    )


def _schema_invalid(
    violations: tuple[Violation, ...], submitter: str, cdr_key: str | None = None
) -> Rejected:
    return Rejected(
        Reason.SCHEMA_INVALID,
        Stage.DECODE,
        "; ".join(str(v) for v in violations),
        violations,
        submitter=submitter,
        cdr_key=cdr_key,
    )


def _empty_identity(cdr: Cdr) -> tuple[Violation, ...]:
    """OCPI's CiString allows "", but a CDR without an id (or a credit naming none) has no
    canonical key to book, dedupe or reverse by."""
    violations = []
    if not cdr.id:
        violations.append(Violation(path="cdr.id", rule="must not be empty", code="too_short"))
    if cdr.is_credit and cdr.credit_reference_id == "":
        violations.append(
            Violation(path="cdr.credit_reference_id", rule="must not be empty", code="too_short")
        )
    return tuple(violations)


def _key_of(payload: object) -> str | None:
    """The canonical key of an invalid CDR, when its identifying fields are readable."""
    if not isinstance(payload, dict):
        return None
    parts = [payload.get(name) for name in ("country_code", "party_id", "id")]
    if all(isinstance(part, str) and part for part in parts):
        return "*".join(str(part).upper() for part in parts)
    return None
