"""Every record is what its category says, as the hub will see it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.simulate import Category, Submission
from schemas.events import CdrSubmitted, parse_envelope, split_envelope
from schemas.hub.party import CdrKey
from schemas.ocpi.cdr import Cdr
from schemas.validation import SchemaInvalid, parse_cdr
from schemas.wire import encode_json, to_ocpi_json
from settlement.rating import RatedCdr, rate_cdr
from settlement.rating.results import TOTAL_FIELDS
from tests.unit.simulate.conftest import Book, cdr_bytes, cdr_of, payload

HOUR = Decimal(3600)


def _hours(delta: timedelta) -> Decimal:
    return Decimal(int(delta.total_seconds())) / HOUR


def _assert_consistent(cdr: Cdr) -> None:
    """Periods, timestamps and totals agree exactly."""
    starts = [p.start_date_time for p in cdr.charging_periods]
    assert starts == sorted(starts) and starts[0] == cdr.start_date_time
    assert starts[-1] < cdr.end_date_time and 1 <= len(starts) <= 6
    ends = [*starts[1:], cdr.end_date_time]
    energy = parking = Decimal(0)
    for period, end in zip(cdr.charging_periods, ends, strict=True):
        volumes = {d.type.value: d.volume for d in period.dimensions}
        duration = _hours(end - period.start_date_time)
        if "PARKING_TIME" in volumes:
            assert volumes == {"PARKING_TIME": duration}
            parking += duration
        else:
            assert volumes["TIME"] == duration and volumes["ENERGY"] > 0
            energy += volumes["ENERGY"]
    assert cdr.total_energy == energy
    assert cdr.total_time == _hours(cdr.end_date_time - cdr.start_date_time)
    assert cdr.total_parking_time == parking


def _assert_declared_equals_rating(book: Book, cdr: Cdr, skip_total: bool = False) -> RatedCdr:
    rated = rate_cdr(cdr, book.tariff(cdr), time_zone=book.zone(cdr))
    for field in TOTAL_FIELDS:
        if skip_total and field == "total_cost":
            continue
        computed, declared = rated.totals.get(field), getattr(cdr, field)
        if computed is None:
            assert declared is None, field
        else:
            assert declared is not None, field
            assert (declared.excl_vat, declared.incl_vat) == (
                computed.excl_vat,
                computed.incl_vat,
            ), field
    return rated


def _assert_canonical(submission: Submission) -> CdrSubmitted:
    envelope = parse_envelope(submission.value)
    assert isinstance(envelope, CdrSubmitted)
    assert to_ocpi_json(envelope) == submission.value  # the bytes new_envelope would write
    assert envelope.submitter.party_id == envelope.cdr.party_id
    assert submission.key == str(CdrKey.partition_key(envelope.cdr)).encode()
    assert submission.cdr_key == str(CdrKey.of(envelope.cdr))
    return envelope


def test_valid_records_parse_and_price_exactly(book: Book) -> None:
    valid = book.of(Category.VALID)
    assert len(valid) == book.scenario.expected.valid
    embedded = 0
    for _, submission in valid:
        cdr = _assert_canonical(submission).cdr
        assert parse_cdr(payload(submission)) == cdr
        _assert_consistent(cdr)
        agreement = book.agreement(cdr)
        assert agreement is not None
        if cdr.tariffs:
            embedded += 1
            assert cdr.tariffs == (book.tariff(cdr),)
        rated = _assert_declared_equals_rating(book, cdr, submission.declared_mismatch)
        delta = abs(cdr.total_cost.excl_vat - rated.totals.total_cost.excl_vat)
        if submission.declared_mismatch:
            assert Decimal("0.02") <= delta <= agreement.tolerance
            assert not rated.comparison.within_tolerance  # beyond the default 0.01
        else:
            assert delta == 0 and rated.comparison.within_tolerance
    assert len(valid) // 5 < embedded < len(valid) * 2 // 5  # embedded_tariff_share 0.3


def test_orjson_writes_what_encode_json_writes(book: Book) -> None:
    for _, submission in book.of(Category.VALID)[:50]:
        assert encode_json(payload(submission)).encode() == cdr_bytes(submission)


def test_sessions_span_the_window_and_zones(book: Book) -> None:
    cdrs = [cdr_of(s) for _, s in book.of(Category.VALID)]
    now = book.scenario.config.now
    window = timedelta(days=book.scenario.config.window_days)
    assert all(now - window <= c.start_date_time and c.last_updated <= now for c in cdrs)
    assert len({book.zone(c) for c in cdrs}) >= 5
    assert Counter(len(c.charging_periods) for c in cdrs).keys() >= {1, 2, 3, 4}


def test_exact_duplicates_resend_the_same_cdr(book: Book) -> None:
    duplicates = book.of(Category.EXACT_DUPLICATE)
    assert len(duplicates) == book.scenario.expected.exact_duplicate
    for _, submission in duplicates:
        assert submission.original_index is not None
        original = book.scenario.submissions[submission.original_index]
        assert cdr_bytes(submission) == cdr_bytes(original)
        assert submission.key == original.key and submission.cdr_key == original.cdr_key
        _assert_canonical(submission)
        assert json.loads(submission.value)["event_id"] != json.loads(original.value)["event_id"]


def test_conflicting_duplicates_share_the_key_but_differ(book: Book) -> None:
    conflicts = book.of(Category.CONFLICTING_DUPLICATE)
    assert len(conflicts) == book.scenario.expected.conflicting_duplicate
    for _, submission in conflicts:
        assert submission.original_index is not None
        original = book.scenario.submissions[submission.original_index]
        assert submission.key == original.key and submission.cdr_key == original.cdr_key
        cdr, first = _assert_canonical(submission).cdr, cdr_of(original)
        assert cdr != first and cdr.total_energy > first.total_energy
        _assert_consistent(cdr)
        _assert_declared_equals_rating(book, cdr)


def test_credits_reverse_earlier_originals_once(book: Book) -> None:
    credits = book.of(Category.CREDIT)
    assert len(credits) == book.scenario.expected.credit
    credited = Counter(s.original_index for _, s in credits)
    assert all(n == 1 for n in credited.values())
    for _, submission in credits:
        assert submission.original_index is not None
        original = book.scenario.submissions[submission.original_index]
        assert not original.declared_mismatch
        cdr, first = _assert_canonical(submission).cdr, cdr_of(original)
        assert cdr.is_credit and cdr.credit_reference_id == first.id
        assert submission.key == original.key  # keyed by the credited CDR
        assert submission.cdr_key == f"{original.cdr_key}-CR" and len(cdr.id) <= 39
        assert cdr.charging_periods == first.charging_periods
        assert cdr.last_updated >= first.last_updated
        for field in TOTAL_FIELDS:
            price, reversed_price = getattr(first, field), getattr(cdr, field)
            assert (price is None) == (reversed_price is None)
            if price is not None:
                assert reversed_price.excl_vat == -price.excl_vat
                assert reversed_price.incl_vat == -price.incl_vat
        _assert_declared_equals_rating(book, cdr)


def test_schema_invalid_records_fail_parse_cdr(book: Book) -> None:
    invalid = book.of(Category.SCHEMA_INVALID)
    assert len(invalid) == book.scenario.expected.schema_invalid
    for _, submission in invalid:
        header, raw_cdr = split_envelope(submission.value)  # the envelope itself is fine
        assert header.submitter is not None
        with pytest.raises(SchemaInvalid):
            parse_cdr(raw_cdr)
        assert submission.cdr_key is None and submission.fault
    assert len({s.fault for _, s in invalid}) >= 5


def test_malformed_records_are_not_json(book: Book) -> None:
    malformed = book.of(Category.MALFORMED_JSON)
    assert len(malformed) == book.scenario.expected.malformed_json
    for _, submission in malformed:
        with pytest.raises(ValueError):  # JSONDecodeError or UnicodeDecodeError
            json.loads(submission.value)


def test_unknown_tariff_records_are_otherwise_valid(book: Book) -> None:
    records = book.of(Category.UNKNOWN_TARIFF)
    assert len(records) == book.scenario.expected.unknown_tariff
    for _, submission in records:
        cdr = _assert_canonical(submission).cdr
        _assert_consistent(cdr)
        assert not cdr.tariffs
        for period in cdr.charging_periods:
            assert (cdr.country_code, cdr.party_id, period.tariff_id) not in book.tariffs
        assert book.agreement(cdr) is not None


def test_no_agreement_records_are_otherwise_valid(book: Book) -> None:
    records = book.of(Category.NO_AGREEMENT)
    assert len(records) == book.scenario.expected.no_agreement
    for _, submission in records:
        cdr = _assert_canonical(submission).cdr
        _assert_consistent(cdr)
        assert book.agreement(cdr) is None
        _assert_declared_equals_rating(book, cdr)


def test_forged_records_are_well_formed_and_go_unsigned(book: Book) -> None:
    records = book.of(Category.FORGED)
    assert len(records) == book.scenario.expected.forged > 0
    for _, submission in records:
        assert not submission.signed
        assert cdr_of(submission).country_code  # a CDR the hub would book, if proven
    assert all(s.signed for _, s in book.of(Category.VALID))
