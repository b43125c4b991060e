"""The fast decoder and the pydantic models decide alike: the same records accepted, with the
same values (types, digits, fields set, extras), and every other record left to the models.

Held on the public corpus (../shared/ocpi-cases, read in place), on simulated streams (valid
CDRs, credits, schema faults, malformed values), on every schema fault of the simulator, and
on hypothesis mutations of valid CDRs (fields removed, replaced by values at the edges of
each rule, records re-encoded).
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from pipeline.simulate import ScenarioConfig, build_reference
from pipeline.simulate.faults import SCHEMA_FAULTS
from pipeline.simulate.scenario import iter_submissions
from schemas.base import loads_exact
from schemas.wire import encode_json_bytes
from settlement.clearing.decode import Decoded, decode, decode_validated
from settlement.clearing.fast_decode import decode_fast
from settlement.clearing.outcome import Rejected
from tests.unit.clearing.factories import cdr_data

CORPUS: Final = Path(__file__).resolve().parents[3].parent / "shared" / "ocpi-cases"
ENVELOPE_HEAD: Final = (
    b'{"event_id":"1fdecc3e-bf3e-4762-8b04-82e0209f6c93","type":"cdr.submitted",'
    b'"version":1,"occurred_at":"2026-03-17T14:34:11Z",'
    b'"submitter":{"country_code":"NL","party_id":"TNM"},"cdr":'
)


def _enveloped(cdr_json: bytes) -> bytes:
    return ENVELOPE_HEAD + cdr_json + b"}"


def _same(validated: object, fast: object, path: str = "$") -> None:
    """Equal as values and as objects: the same classes, fields sets, extras, field order,
    and leaves with the same repr (Decimal("1.0") and Decimal("1.00") differ)."""
    assert type(validated) is type(fast), path
    if isinstance(validated, BaseModel):
        assert isinstance(fast, BaseModel)
        assert type(fast.__pydantic_fields_set__) is set, path
        assert validated.__pydantic_fields_set__ == fast.__pydantic_fields_set__, path
        assert validated.__pydantic_extra__ == fast.__pydantic_extra__, path
        assert validated.__pydantic_private__ == fast.__pydantic_private__, path
        assert list(validated.__dict__) == list(fast.__dict__), path
        for name, value in validated.__dict__.items():
            _same(value, fast.__dict__[name], f"{path}.{name}")
    elif isinstance(validated, tuple):
        assert isinstance(fast, tuple) and len(validated) == len(fast), path
        for index, (left, right) in enumerate(zip(validated, fast, strict=True)):
            _same(left, right, f"{path}[{index}]")
    else:
        assert repr(validated) == repr(fast), path


def _agree(value: bytes) -> bool:
    """Both decoders decide `value` alike; True when the fast one read it itself."""
    validated = decode_validated(value)
    fast = decode_fast(value)
    if fast is not None:
        assert isinstance(validated, Decoded), value
        assert (validated.event_id, validated.submitter) == fast[:2]
        _same(validated.cdr, fast[2])
    outcome = decode(value)
    if isinstance(validated, Rejected):
        assert outcome == validated
    else:
        assert isinstance(outcome, Decoded)
        assert (outcome.event_id, outcome.submitter) == (validated.event_id, validated.submitter)
        _same(validated.cdr, outcome.cdr)
    return fast is not None


def test_the_corpus_decodes_alike() -> None:
    cases = sorted(path for path in CORPUS.iterdir() if (path / "cdr.json").is_file())
    assert len(cases) >= 40
    fast = [_agree(_enveloped((case / "cdr.json").read_bytes().strip())) for case in cases]
    # re-encoded compactly, the same CDRs again (the files are indented)
    fast += [
        _agree(_enveloped(encode_json_bytes(loads_exact((case / "cdr.json").read_bytes()))))
        for case in cases
    ]
    assert any(fast)


def test_a_simulated_stream_decodes_alike() -> None:
    config = ScenarioConfig(cdrs=3_000, seed=7)
    values = [s.value for s in iter_submissions(config, build_reference(config))]
    fast = [_agree(value) for value in values]
    accepted = sum(isinstance(decode_validated(value), Decoded) for value in values)
    assert sum(fast) >= 0.9 * accepted  # the fast path carries the stream


EDGE_VALUES: Final[tuple[Any, ...]] = (
    None,
    "",
    "x" * 37,
    "x" * 40,
    "NL\n",
    "nl",
    "Düsseldorf",
    "ÄBC",
    "a\x7fb",
    "tab\there",
    "\u0000",
    True,
    0,
    -1,
    -0,
    10**16,
    10**17,
    Decimal("-0.0"),
    Decimal("1.2345"),
    Decimal("1.23456"),
    Decimal("101"),
    Decimal("1E+2"),
    Decimal("-1.5"),
    "1.5",
    "NaN",
    [],
    {},
    {"excl_vat": Decimal("1.10")},
    {"excl_vat": "1.10"},
    "2015-06-29T20:39:09Z",
    "2015-06-29T20:39:09.5Z",
    "2015-06-29T20:39:09.1234567Z",
    "2015-06-29T20:39:09+01:00",
    "2015-06-29T20:39:09+01:60",
    "2015-06-29t20:39:09z",
    "2015-06-29 20:39:09Z",
    "2015-06-29T20:39:09",
    "2015-02-30T20:39:09Z",
    "0001-01-01T00:00:00+01:00",
    "2015-W26-1T20:39:09Z",
    "ENERGY",
    "STATE_OF_CHARGE",
    "CABLE",
    "EUR",
    "eur",
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutated(document: Any, path: tuple[Any, ...], action: str, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(document) if isinstance(document, dict) else list(document)
    if rest:
        copy[head] = _mutated(document[head], rest, action, new)
    elif action == "remove" and isinstance(copy, dict):
        del copy[head]
    else:
        copy[head] = new
    return copy


def _simulated_cdrs(count: int) -> list[Any]:
    """Valid wire CDRs of a simulated stream, some with their tariffs, some credits."""
    config = ScenarioConfig(cdrs=count, seed=11)
    values = [s.value for s in iter_submissions(config, build_reference(config))]
    return [loads_exact(v)["cdr"] for v in values if isinstance(decode_validated(v), Decoded)]


SIMULATED: Final = _simulated_cdrs(300)
SAMPLES: Final = (
    loads_exact(encode_json_bytes(cdr_data(0))),
    *[c for c in SIMULATED if c.get("tariffs")][:3],
    *[c for c in SIMULATED if c.get("credit")][:2],
    *SIMULATED[:3],
)


def test_every_field_at_every_edge_decodes_alike() -> None:
    """Each field of a CDR with tariffs, removed or replaced by each edge value in turn."""
    document = next(c for c in SIMULATED if c.get("tariffs") and c.get("total_parking_time"))
    for path in _paths(document):
        _agree(_enveloped(encode_json_bytes(_mutated(document, path, "remove", None))))
        for new in EDGE_VALUES:
            _agree(_enveloped(encode_json_bytes(_mutated(document, path, "replace", new))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    changes=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.sampled_from(("remove", "replace", "extra")),
            st.sampled_from(EDGE_VALUES),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_mutated_cdrs_decode_alike(sample: Any, changes: list[tuple[int, str, Any]]) -> None:
    document = sample
    for position, action, new in changes:
        paths = _paths(document)
        if not paths:
            break
        path = paths[position % len(paths)]
        if action == "extra":
            parent = path[:-1]
            path = (*parent, "x_vendor")
            if parent and not isinstance(_at(document, parent), dict):
                continue
        document = _mutated(document, path, action, new)
    _agree(_enveloped(encode_json_bytes(document)))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def test_every_schema_fault_decodes_alike() -> None:
    rng = random.Random(3)
    for kind, fault in SCHEMA_FAULTS.items():
        for index in range(20):
            broken = dict(SIMULATED[index])
            fault(broken, rng)
            assert not _agree(_enveloped(encode_json_bytes(broken))), kind


ENVELOPE_EDGES: Final[tuple[Any, ...]] = (
    *EDGE_VALUES,
    "1FDECC3E-BF3E-4762-8B04-82E0209F6C93",
    "1fdecc3ebf3e47628b0482e0209f6c93",
    "{1fdecc3e-bf3e-4762-8b04-82e0209f6c93}",
    "urn:uuid:1fdecc3e-bf3e-4762-8b04-82e0209f6c93",
    "1fdecc3e-bf3e-4762-8b04-82e0209f6c9",
    1,
    2,
    "1",
    "cdr.rated",
    {"country_code": "nl", "party_id": "tnm"},
    {"country_code": "NL", "party_id": "TNM", "x": 1},
    {"country_code": "NL\n", "party_id": "TNM"},
)


def test_every_envelope_field_at_every_edge_decodes_alike() -> None:
    envelope = loads_exact(_enveloped(encode_json_bytes(SIMULATED[0])))
    for name in ("event_id", "type", "version", "occurred_at", "submitter", "x_vendor"):
        _agree(encode_json_bytes({k: v for k, v in envelope.items() if k != name}))
        for new in ENVELOPE_EDGES:
            _agree(encode_json_bytes({**envelope, name: new}))


def test_records_with_one_location_and_tariff_text_share_their_values() -> None:
    """Built once per text, shared by every CDR holding the very same text (and equal to
    what the pydantic path builds for each)."""
    data = cdr_data()
    data["tariffs"] = [
        {
            "country_code": data["country_code"],
            "party_id": data["party_id"],
            "id": "T1",
            "currency": data["currency"],
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.2500, "step_size": 1}]}
            ],
            "last_updated": "2026-01-01T00:00:00Z",
        }
    ]
    first, second = (
        decode_fast(_enveloped(encode_json_bytes({**data, "id": cdr_id})))
        for cdr_id in ("CDR-A", "CDR-B")
    )
    assert first is not None and second is not None
    assert first[2].cdr_location is second[2].cdr_location
    assert first[2].tariffs is second[2].tariffs
    for fast in (first, second):
        validated = decode_validated(_enveloped(encode_json_bytes({**data, "id": fast[2].id})))
        assert isinstance(validated, Decoded)
        _same(validated.cdr, fast[2])
    without = decode_fast(_enveloped(encode_json_bytes({**data, "tariffs": None})))
    assert without is None  # null is not a list of tariffs: the pydantic path's verdict
