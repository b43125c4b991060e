"""Checksum v2 and the seal: one pinned definition, unambiguous lines, and what a seal check
finds when a stored figure, the checksum, the chain or the key changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.hub.agreement import SettlementPeriod
from settlement.batches.checksum import (
    CHECKSUM_V1,
    CHECKSUM_V2,
    FieldForm,
    LedgerLine,
    StoredBatch,
    batch_checksum_v2,
    body_v2,
    field_text,
    line_v2,
)
from settlement.batches.model import BatchKey
from settlement.batches.seal import (
    PreviousBatch,
    SealKey,
    SealKeys,
    SealStatus,
    StoredSeal,
    chain_link,
    check_seal,
    seal,
)
from settlement.keys import HubKey, HubKeyring

T0 = datetime(2025, 5, 10, 11, 15, tzinfo=UTC)
T1 = datetime(2025, 5, 10, 12, 0, 0, 250_000, tzinfo=UTC)
LINE = LedgerLine(
    posting_id=7,
    transaction_id="0b9f6a1e-3c2d-5e4f-8a7b-1c2d3e4f5a6b",
    kind="CHARGE",
    cdr_key="NL*TNM*C1",
    cpo="NL*TNM",
    emsp="DE*EMS",
    session_start=T0,
    session_end=T1,
    location_id=None,
    energy_kwh=Decimal("11.5"),
    amount_excl_vat=Decimal("8.2645"),
    amount_incl_vat=Decimal("10.0000"),
    fee=Decimal("0.1500"),
    side="CREDIT",
    amount=Decimal("9.8500"),
    late=False,
    vat_breakdown='[{"vat": "21.0", "excl_vat": "8.2645", "incl_vat": "10.0000"}]',
)
BATCH = StoredBatch(
    batch_id=42,
    key=BatchKey("partner:NL*TNM", "EUR", SettlementPeriod.MONTHLY),
    period_start=datetime(2025, 5, 1, tzinfo=UTC),
    period_end=datetime(2025, 6, 1, tzinfo=UTC),
    settlement_tz="UTC",
    watermark=1200,
    prior_watermark=0,
    created_at=T1,
    closed_at=T1,
    postings=1,
    late_postings=0,
    debit=Decimal(0),
    credit=Decimal("9.8500"),
    rounding=Decimal("0.0000"),
    late_net=Decimal(0),
    rounding_transaction_id=None,
)
KEY = SealKey.of(HubKey.from_secret(b"0" * 32))
KEYS = SealKeys(KEY)


def test_the_v2_line_and_checksum_are_pinned() -> None:
    assert line_v2(LINE) == (
        "7|0b9f6a1e-3c2d-5e4f-8a7b-1c2d3e4f5a6b|6:CHARGE|9:NL*TNM*C1|6:NL*TNM|6:DE*EMS"
        "|2025-05-10T11:15:00.000000Z|2025-05-10T12:00:00.250000Z|~|11.5|8.2645|10.0000"
        '|0.1500|6:CREDIT|9.8500|false|[{"vat": "21.0", "excl_vat": "8.2645", '
        '"incl_vat": "10.0000"}]'
    )
    assert BATCH.header_line() == (
        "42|14:partner:NL*TNM|3:EUR|7:MONTHLY|2025-05-01T00:00:00.000000Z"
        "|2025-06-01T00:00:00.000000Z|3:UTC|1200|0|2025-05-10T12:00:00.250000Z"
        "|2025-05-10T12:00:00.250000Z"
    )
    # sums over no rows come back as 0, the column holds 0.0000: the same text either way
    assert BATCH.totals_line() == "1|0|0.0000|9.8500|0.0000|0.0000|9.8500|~"
    body = body_v2([LINE])
    assert body == "da3609159729129d25ef152b89dfc15b90d95a7d65d51e1afc6883492acc2c55"
    checksum = batch_checksum_v2(BATCH, body, "-")
    assert checksum == "466301d8841b39308f8caaa4930cd0d65f1de09d1778140b0456c61517ff9b69"
    assert seal(KEY, BATCH, checksum, "-") == (
        "d13bc04e2ab5df372eb88fc7c000051d3ce5d177eb03350faed3c30f97f5337b"
    )


def test_a_separator_inside_a_text_field_cannot_shift_fields() -> None:
    shifted = replace(LINE, cdr_key="NL*TNM*C1|6:NL*TNM", cpo="X")
    assert line_v2(shifted) != line_v2(LINE)
    moved = replace(LINE, location_id="A|4:B", kind="CHARGE|5:x")
    assert line_v2(moved).count("|") == line_v2(LINE).count("|") + 2  # inside their lengths
    assert field_text(None, FieldForm.TEXT) != field_text("~", FieldForm.TEXT)
    assert field_text("", FieldForm.TEXT) == "0:"
    assert field_text(Decimal("1E-7")) == "0.0000001"  # plain, as PostgreSQL prints it


def test_every_line_figure_changes_the_body() -> None:
    changes = {
        "kind": "REVERSAL",
        "cdr_key": "NL*TNM*C2",
        "cpo": "BE*EMB",
        "emsp": "BE*EMB",
        "session_start": T1,
        "session_end": T0,
        "location_id": "LOC1",
        "energy_kwh": Decimal("11.6"),
        "amount_excl_vat": Decimal("8.2646"),
        "amount_incl_vat": Decimal("10.0001"),
        "fee": Decimal("0.1501"),
        "side": "DEBIT",
        "amount": Decimal("9.8501"),
        "late": True,
        "vat_breakdown": '[{"vat": "9.0", "excl_vat": "8.2645", "incl_vat": "10.0000"}]',
    }
    bodies = {body_v2([replace(LINE, **{name: value})]) for name, value in changes.items()}
    assert len(bodies) == len(changes) and body_v2([LINE]) not in bodies


def test_every_stored_figure_changes_the_checksum() -> None:
    changes = {
        "batch_id": 43,
        "settlement_tz": "Europe/Amsterdam",
        "watermark": 1201,
        "prior_watermark": 1,
        "closed_at": T0,
        "created_at": T0,
        "postings": 2,
        "late_postings": 1,
        "debit": Decimal("1.0000"),
        "credit": Decimal("9.8600"),
        "rounding": Decimal("0.0100"),
        "late_net": Decimal("1.0000"),
        "rounding_transaction_id": "8d7e0f4a-0000-5000-8000-000000000001",
    }
    checksums = {
        batch_checksum_v2(replace(BATCH, **{name: value}), "b" * 64, "-")
        for name, value in changes.items()
    }
    assert len(checksums) == len(changes)
    assert batch_checksum_v2(BATCH, "b" * 64, "-") not in checksums


def _sealed(batch: StoredBatch = BATCH, link: str = "-", key: SealKey = KEY) -> StoredSeal:
    checksum = batch_checksum_v2(batch, "b" * 64, "-")
    return StoredSeal(CHECKSUM_V2, checksum, seal(key, batch, checksum, link), key.key_id, link)


def test_an_intact_row_and_chain_are_valid() -> None:
    may = _sealed()
    assert check_seal(BATCH, may, None, 42, KEYS).status is SealStatus.VALID
    june = replace(BATCH, batch_id=43, period_start=BATCH.period_end)
    previous = PreviousBatch(CHECKSUM_V2, may.checksum, may.seal)
    assert chain_link(previous) == f"seal:{may.seal}"
    check = check_seal(june, _sealed(june, chain_link(previous)), previous, 42, KEYS)
    assert check.status is SealStatus.VALID and check.differences == ()
    # after a batch closed before sealing, the link names its (unkeyed) checksum
    assert chain_link(PreviousBatch(CHECKSUM_V1, "c" * 64, None)) == "v1:" + "c" * 64


def test_a_changed_stored_figure_or_checksum_breaks_the_seal() -> None:
    stored = _sealed()
    for batch, found in (
        (replace(BATCH, credit=Decimal("10.8500")), stored),
        (BATCH, replace(stored, checksum="c" * 64)),
        (BATCH, replace(stored, seal="d" * 64)),
    ):
        check = check_seal(batch, found, None, 42, KEYS)
        assert check.status is SealStatus.INVALID
        assert any(d.startswith("seal:") for d in check.differences)


def test_a_deleted_or_replaced_predecessor_breaks_the_chain() -> None:
    may = _sealed()
    june = replace(BATCH, batch_id=43, period_start=BATCH.period_end)
    stored = _sealed(june, f"seal:{may.seal}")
    for previous in (None, PreviousBatch(CHECKSUM_V2, may.checksum, "e" * 64)):
        check = check_seal(june, stored, previous, 42, KEYS)
        assert check.status is SealStatus.INVALID
        assert [d.split(":")[0] for d in check.differences] == ["chain"]


def test_unsealed_batches_before_sealing_began_and_after_it() -> None:
    v1 = StoredSeal(CHECKSUM_V1, "c" * 64, None, None, None)
    assert check_seal(BATCH, v1, None, None, KEYS).status is SealStatus.UNSEALED
    assert check_seal(BATCH, v1, None, 50, KEYS).status is SealStatus.UNSEALED
    downgraded = check_seal(BATCH, v1, None, 41, KEYS)
    assert downgraded.status is SealStatus.INVALID and "batch 41" in downgraded.differences[0]


@pytest.mark.parametrize("rotated", [True, False])
def test_a_rotated_key_verifies_while_it_is_kept(rotated: bool) -> None:
    new = SealKey.of(HubKey.from_secret(b"1" * 32))
    old_hub = HubKey.from_secret(b"0" * 32)
    keyring = HubKeyring(HubKey.from_secret(b"1" * 32), (old_hub,) if rotated else ())
    keys = SealKeys.from_keyring(keyring)
    assert keys.current == new
    check = check_seal(BATCH, _sealed(), None, 42, keys)
    if rotated:
        assert check.status is SealStatus.VALID
    else:
        assert check.status is SealStatus.UNKNOWN_KEY and KEY.key_id in check.differences[0]
