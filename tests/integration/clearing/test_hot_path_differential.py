"""The hot path, pinned against the code before it was made fast (issue 12 item 4, commit
b230ffb): a simulated stream and the whole OCPI case corpus must decide, price, book and
encode exactly as they did then.

Per simulated record (pure, in one process, as `roamclear bench clearing` runs it: decode →
`decide_batch` in batches of 2,000 carrying the bookings across → events → rows): the outcome
kind, reason code, stage, message, violations, submitter and CDR key; for a booking its
transaction (id, postings), amounts, settlement period, the traceability record, its rows and
its event bytes; for a rejection its event bytes. Per corpus case (`cdr.json` of
../shared/ocpi-cases, read in place): the envelope decode and the OCPI receiver's bare-CDR
parse (violations, or the canonical JSON and content hash), and the price with the case's own
tariff. Each is reduced to one SHA-256 over its lines; `hot_path_golden.json` holds the
digests the code of b230ffb computes (random event ids masked).

The stream's size is `ROAMCLEAR_DIFFERENTIAL_CDRS` (default 10,000, about 5 s; issue 12 asks
for 100,000, about 40 s, pinned too and run before every change of the hot path). A size
without a pinned digest fails and says how to pin one: run this module against b230ffb with
ROAMCLEAR_GOLDEN_WRITE=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest

from pipeline.bench.clearing import HUB, KEYRING, TOPIC, load_reference
from pipeline.clearing.events import EventWriter
from pipeline.hubkeys import HubSigner, record_proof_keys
from pipeline.simulate import ScenarioConfig, build_reference
from pipeline.simulate.scenario import iter_submissions
from schemas.base import loads_exact
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.completion import complete_cdr, complete_tariff
from schemas.ocpi.v211 import parse_cdr_any, parse_tariff_any
from settlement.clearing.batch import decide_batch
from settlement.clearing.decode import Decoded, decode, parse_cdr_payload
from settlement.clearing.entry import Booking
from settlement.clearing.identity import canonical_json, content_hash
from settlement.clearing.outcome import Booked, Duplicate, Rejected
from settlement.clearing.plausibility import PlausibilityLimits
from settlement.rating import rate_cdr
from settlement.rating.report import rated_cdr_json
from settlement.store.clearing_rows import posting_rows, transaction_row
from settlement.store.clearing_store import SubmittedRecord

pytestmark = pytest.mark.integration

GOLDEN: Final = Path(__file__).with_name("hot_path_golden.json")
CDRS: Final = int(os.environ.get("ROAMCLEAR_DIFFERENTIAL_CDRS", "10000"))
BATCH: Final = 2_000
NOW: Final = datetime(2026, 4, 1, 6, tzinfo=UTC)
EVENT_ID: Final = re.compile(rb'"event_id":"[0-9a-f-]{36}"')
CORPUS: Final = Path(__file__).resolve().parents[3].parent / "shared" / "ocpi-cases"
OWNER: Final = PartyRef.parse("ZZ*CPO")
EMSP: Final = PartyRef.parse("ZZ*MSP")


def _masked(value: bytes) -> bytes:
    return EVENT_ID.sub(b'"event_id":"-"', value)


def _text(value: object) -> str | None:
    """A party or key as the outcome held it before it was typed: its canonical text."""
    return None if value is None else str(value)


def _outcome_lines(outcome: object) -> Iterator[str]:
    if isinstance(outcome, Rejected):
        yield repr(
            (
                "REJECTED",
                str(outcome.reason),
                outcome.stage.value,
                outcome.message,
                [(v.path, v.rule, v.code) for v in outcome.violations],
                _text(outcome.submitter),
                outcome.cdr_key,
            )
        )
    elif isinstance(outcome, Duplicate):
        yield repr(("DUPLICATE", _text(outcome.cdr_key), outcome.transaction_id))
    else:
        assert isinstance(outcome, Booked)
        entry = outcome.entry
        yield repr(("BOOKED", _text(outcome.cpo), _text(outcome.emsp), outcome.time_zone))
        yield entry.transaction.model_dump_json()
        yield repr((entry.amounts, entry.settlement_period.value))
        yield json.dumps(entry.trace.as_json(), sort_keys=True)
        yield repr(transaction_row(outcome, 0, NOW))
        yield repr(posting_rows(outcome))


def stream_digest(database_url: str, cdrs: int) -> tuple[str, dict[str, int]]:
    config = ScenarioConfig(cdrs=cdrs, seed=7)
    data = build_reference(config)
    refs = load_reference(database_url, data)
    sign = HubSigner(KEYRING)
    writer, limits, keys = (
        EventWriter("diff", HUB),
        PlausibilityLimits(),
        record_proof_keys(KEYRING),
    )
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    held: dict[CdrKey, Booking] = {}
    submissions = iter_submissions(config, data)
    for start in range(0, cdrs, BATCH):
        records = [
            SubmittedRecord(
                TOPIC,
                0,
                start + index,
                None,
                s.key,
                s.value,
                tuple(sign(TOPIC, s.value)) if s.signed else (),
            )
            for index, s in zip(range(BATCH), submissions, strict=False)
        ]
        decoded = [decode(record.value) for record in records]
        batch = list(zip(records, decoded, strict=True))
        for record, decision in zip(
            records, decide_batch(batch, NOW, limits, keys, refs, held), strict=True
        ):
            outcome = decision.outcome
            kind = type(outcome).__name__
            counts[kind] = counts.get(kind, 0) + 1
            lines = [repr(decision.proof), *_outcome_lines(outcome)]
            if isinstance(outcome, Booked):
                held[outcome.transaction.cdr_key] = Booking.of(outcome.entry)
                for sent in writer.booked(outcome, NOW):
                    lines.append(repr((sent.topic, sent.key, _masked(sent.value))))
                if outcome.transaction.reverses is not None:
                    credited = CdrKey.credited_key(outcome.cdr)
                    assert credited is not None
                    reversed_by = outcome.transaction.transaction_id
                    held[credited] = replace(held[credited], reversed_by=reversed_by)
            elif isinstance(outcome, Rejected):
                sent = writer.rejected(outcome, record, NOW)
                lines.append(repr((sent.topic, sent.key, _masked(sent.value))))
            digest.update("\n".join(lines).encode() + b"\n")
    return digest.hexdigest(), dict(sorted(counts.items()))


def _decoded_lines(parsed: object) -> Iterator[str]:
    if isinstance(parsed, Decoded):
        parsed = parsed.cdr
    if isinstance(parsed, tuple):
        yield repr([(v.path, v.rule, v.code) for v in parsed])
    elif isinstance(parsed, Rejected):
        yield from _outcome_lines(parsed)
    else:
        yield canonical_json(parsed).decode()  # type: ignore[arg-type]
        yield content_hash(parsed)  # type: ignore[arg-type]


def corpus_digest(corpus: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    cases = sorted(path for path in corpus.iterdir() if path.is_dir())
    for case in cases:
        value = (case / "cdr.json").read_bytes()
        envelope = (
            b'{"event_id":"00000000-0000-4000-8000-000000000000","type":"cdr.submitted",'
            b'"occurred_at":"2026-04-01T06:00:00Z","submitter":{"country_code":"ZZ",'
            b'"party_id":"CPO"},"payload":' + value + b"}"
        )
        lines = [case.name, *_decoded_lines(decode(envelope))]
        lines += _decoded_lines(parse_cdr_payload(loads_exact(value), value, ""))
        try:
            cdr = parse_cdr_any(
                complete_cdr(loads_exact(value), owner=OWNER).data, owner=OWNER, emsp=EMSP
            )
            tariff_data = loads_exact((case / "tariff.json").read_bytes())
            completed = complete_tariff(tariff_data, owner=OWNER, last_updated=NOW)
            tariff = parse_tariff_any(completed.data, owner=OWNER)
            lines += _decoded_lines(cdr)
            rated = rate_cdr(cdr, tariff, time_zone="Europe/Amsterdam")
            lines.append(json.dumps(rated_cdr_json(rated), sort_keys=True))
        except Exception as exc:  # the same failure, before and after
            lines.append(f"{type(exc).__name__}: {exc}")
        digest.update("\n".join(lines).encode() + b"\n")
    return digest.hexdigest(), len(cases)


def _golden() -> dict[str, Any]:
    if not GOLDEN.exists():
        return {"stream": {}}
    loaded: dict[str, Any] = json.loads(GOLDEN.read_text())
    return loaded


def _write_golden(section: str, key: str, value: object) -> None:
    golden = _golden()
    golden.setdefault(section, {})[key] = value
    GOLDEN.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")


def test_a_simulated_stream_clears_byte_for_byte_as_before(database_url: str) -> None:
    digest, counts = stream_digest(database_url, CDRS)
    if os.environ.get("ROAMCLEAR_GOLDEN_WRITE") == "1":
        _write_golden("stream", str(CDRS), {"sha256": digest, "counts": counts})
    pinned = _golden()["stream"].get(str(CDRS))
    assert pinned is not None, (
        f"no digest pinned for {CDRS:,} records: run this test against commit b230ffb "
        "with ROAMCLEAR_GOLDEN_WRITE=1 and that ROAMCLEAR_DIFFERENTIAL_CDRS"
    )
    assert counts == pinned["counts"]
    assert counts["Booked"] > CDRS * 0.8, "the stream books most records"
    assert digest == pinned["sha256"]


def test_the_corpus_decodes_and_prices_byte_for_byte_as_before(corpus_dir: Path) -> None:
    digest, cases = corpus_digest(corpus_dir)
    if os.environ.get("ROAMCLEAR_GOLDEN_WRITE") == "1":
        _write_golden("corpus", "ocpi-cases", {"sha256": digest, "cases": cases})
    pinned = _golden()["corpus"]["ocpi-cases"]
    assert cases == pinned["cases"]
    assert digest == pinned["sha256"]
