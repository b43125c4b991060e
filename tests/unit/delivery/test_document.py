"""What an eMSP receives: the CPO's CDR with the settled price and its provenance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.hub.agreement import SettlementBasis
from settlement.delivery.answer import judge
from settlement.delivery.document import (
    HUB_MARK,
    REMARK_CHARS_MAX,
    Settled,
    charge_document,
    credit_document,
)
from settlement.delivery.retry import RetryPolicy

CDR: dict[str, Any] = {
    "id": "CDR-1",
    "total_cost": {"excl_vat": Decimal("10.00"), "incl_vat": Decimal("12.10")},
    "total_energy_cost": {"excl_vat": Decimal("9.00")},
    "total_parking_cost": {"excl_vat": Decimal("1.00")},
    "remark": "from the CPO",
    "last_updated": "2024-05-01T10:00:00Z",
}
SETTLED = Settled(Decimal("10.0100"), Decimal("12.1121"))
HUB = {
    "total_energy_cost": {"excl_vat": "9.0100", "incl_vat": "10.9021"},
    "total_time_cost": None,
    "total_fixed_cost": {"excl_vat": "1.0000", "incl_vat": None},
}


def test_the_hub_s_price_replaces_the_cpo_s_with_its_components_and_mark() -> None:
    sent = charge_document(CDR, SettlementBasis.HUB_COMPUTED, SETTLED, HUB)
    assert sent["total_cost"] == {"excl_vat": SETTLED.excl_vat, "incl_vat": SETTLED.incl_vat}
    assert sent["total_energy_cost"] == {
        "excl_vat": Decimal("9.0100"),
        "incl_vat": Decimal("10.9021"),
    }
    assert sent["total_fixed_cost"] == {"excl_vat": Decimal("1.0000")}
    assert "total_parking_cost" not in sent  # the hub's rating priced no parking
    assert "total_time_cost" not in sent
    assert sent["remark"] == f"{HUB_MARK} from the CPO"
    assert sent["last_updated"] == CDR["last_updated"] and sent["id"] == "CDR-1"
    assert CDR["total_cost"]["excl_vat"] == Decimal("10.00")  # the archived CDR is not touched


def test_the_cpo_s_figures_stay_when_the_agreement_settles_on_them() -> None:
    sent = charge_document(CDR, SettlementBasis.CPO_DECLARED, SETTLED, HUB)
    assert sent["total_cost"] == {"excl_vat": SETTLED.excl_vat, "incl_vat": SETTLED.incl_vat}
    assert sent["total_energy_cost"] == CDR["total_energy_cost"]
    assert sent["total_parking_cost"] == CDR["total_parking_cost"]
    assert sent["remark"] == "from the CPO"


def test_the_mark_fits_ocpi_s_remark_and_is_never_doubled() -> None:
    long = charge_document({**CDR, "remark": "x" * 255}, SettlementBasis.HUB_COMPUTED, SETTLED, HUB)
    assert len(long["remark"]) == REMARK_CHARS_MAX and long["remark"].startswith(HUB_MARK)
    bare = charge_document({**CDR, "remark": None}, SettlementBasis.HUB_COMPUTED, SETTLED, HUB)
    assert bare["remark"] == HUB_MARK
    again = charge_document(long, SettlementBasis.HUB_COMPUTED, SETTLED, HUB)
    assert again["remark"] == long["remark"]


def test_a_credit_mirrors_its_original_as_delivered() -> None:
    original = charge_document(CDR, SettlementBasis.HUB_COMPUTED, SETTLED, HUB)
    credit_cdr = {
        **CDR,
        "id": "CDR-1-C",
        "credit": True,
        "credit_reference_id": "CDR-1",
        "total_cost": {"excl_vat": Decimal("-10.00")},
        "remark": "refund",
        "total_parking_cost": {"excl_vat": Decimal("-1.00")},
    }
    sent = credit_document(credit_cdr, original)
    assert sent["id"] == "CDR-1-C" and sent["credit"] is True
    assert sent["total_cost"] == {"excl_vat": -SETTLED.excl_vat, "incl_vat": -SETTLED.incl_vat}
    assert sent["total_energy_cost"] == {
        "excl_vat": Decimal("-9.0100"),
        "incl_vat": Decimal("-10.9021"),
    }
    assert "total_parking_cost" not in sent  # not in the original as delivered
    assert sent["remark"] == original["remark"]
    zero = credit_document(credit_cdr, {"total_cost": {"excl_vat": Decimal("0.00")}})
    assert str(zero["total_cost"]["excl_vat"]) == "0.00"  # no negative zero


def test_answers_that_are_not_a_delivery() -> None:
    assert judge(201, b'{"status_code": 1000}', None).delivered
    assert judge(201, b'{"status_code": 1000}', None).error is not None  # no Location: noted
    assert not judge(201, b'{"status_code": 2001}', "x").delivered
    assert not judge(500, b'{"status_code": 1000}', "x").delivered
    assert not judge(200, b'{"status_code": true}', "x").delivered
    assert not judge(200, b"[1000]", "x").delivered
    assert not judge(200, b"", "x").delivered


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    policy = RetryPolicy(base_s=2.0, factor=2.0, cap_s=600.0, attempts_max=12)
    for failures in range(1, 40):
        full = min(600.0, 2.0 * 2.0 ** (failures - 1))
        delay = policy.delay_s(failures)
        assert full / 2 <= delay <= full
    assert not policy.gives_up_after(11) and policy.gives_up_after(12)
