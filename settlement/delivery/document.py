"""What an eMSP receives for a booked CDR: the CPO's CDR with the price the agreement settles.

The CDR is the one the CPO sent, as archived (every field it carried, `last_updated`
untouched: OCPI forbids a hub to change it), with its cost fields replaced by what the
ledger booked, so the eMSP bills its driver exactly what it settles with the hub:

- `total_cost` is the settled amount (the agreement's rounding of the basis it settles on);
- where the agreement settles on the hub's computation (`HUB_COMPUTED`), the component
  totals (`total_energy_cost`, …) are the hub's, and `remark` starts with `[*]`, Gireve's
  mark for "calculated by the hub" (a CPO's own remark follows it, cut to OCPI's 255
  characters); where it settles on the CPO's figures (`CPO_DECLARED`), the components and the
  remark stay the CPO's;
- a credit CDR mirrors the CDR it credits as the eMSP received it: the original's cost fields
  negated, its mark kept, on the CPO's credit CDR (its own id, `credit`,
  `credit_reference_id`), as the REVERSAL transaction mirrors the CHARGE.

    >>> cdr = {"id": "C1", "total_cost": {"excl_vat": Decimal("2.5")}, "remark": "ok",
    ...        "last_updated": "2024-05-01T10:00:00Z"}
    >>> sent = charge_document(cdr, SettlementBasis.HUB_COMPUTED,
    ...                        Settled(Decimal("2.40"), Decimal("2.90")), hub_components={})
    >>> sent["total_cost"], sent["remark"]
    ({'excl_vat': Decimal('2.40'), 'incl_vat': Decimal('2.90')}, '[*] ok')
    >>> credit_document({"id": "C1-C", "credit": True, "total_cost": {"excl_vat": 0}}, sent)[
    ...     "total_cost"]
    {'excl_vat': Decimal('-2.40'), 'incl_vat': Decimal('-2.90')}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from schemas.hub.agreement import SettlementBasis

HUB_MARK: Final = "[*]"  # Gireve's provenance mark: the hub calculated the price
REMARK_CHARS_MAX: Final = 255  # OCPI 2.2.1 CDR.remark is string(255)
COMPONENT_FIELDS: Final = (
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_fixed_cost",
    "total_reservation_cost",
)
COST_FIELDS: Final = ("total_cost", *COMPONENT_FIELDS)

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Settled:
    """The amount the ledger booked for a CDR (ledger_transaction's amounts)."""

    excl_vat: Decimal
    incl_vat: Decimal


def _price(excl_vat: Decimal, incl_vat: Decimal | None) -> dict[str, Decimal]:
    price = {"excl_vat": excl_vat}
    if incl_vat is not None:
        price["incl_vat"] = incl_vat
    return price


def _marked(remark: object) -> str:
    text = remark if isinstance(remark, str) else ""
    if text.startswith(HUB_MARK):
        return text[:REMARK_CHARS_MAX]
    return f"{HUB_MARK} {text}".rstrip()[:REMARK_CHARS_MAX]


def charge_document(
    cdr: Mapping[str, Any],
    settles: SettlementBasis,
    settled: Settled,
    hub_components: Mapping[str, Mapping[str, str | None] | None],
) -> Document:
    """The CDR as the eMSP receives it (see the module docstring). `hub_components` holds
    the hub's component totals by field as `cdr.rated` carries them (decimal strings; absent
    or None: the tariff has no such component), read only when the hub's computation is
    settled."""
    document = dict(cdr)
    document["total_cost"] = _price(settled.excl_vat, settled.incl_vat)
    if settles is SettlementBasis.HUB_COMPUTED:
        for field in COMPONENT_FIELDS:
            component = hub_components.get(field)
            if component is None:
                document.pop(field, None)
            else:
                excl_vat, incl_vat = component["excl_vat"], component.get("incl_vat")
                document[field] = _price(
                    Decimal(excl_vat or 0), None if incl_vat is None else Decimal(incl_vat)
                )
        document["remark"] = _marked(cdr.get("remark"))
    return document


def _negated(price: Mapping[str, Decimal]) -> dict[str, Decimal]:
    # + 0: OCPI has no negative zero, and -Decimal(0) is Decimal('-0')
    return {side: -Decimal(amount) + 0 for side, amount in price.items()}


def credit_document(credit_cdr: Mapping[str, Any], original: Mapping[str, Any]) -> Document:
    """The credit CDR as the eMSP receives it: the CPO's credit CDR with the cost fields of
    the original as delivered, negated."""
    document = dict(credit_cdr)
    for field in COST_FIELDS:
        price = original.get(field)
        if price is None:
            document.pop(field, None)
        else:
            document[field] = _negated(price)
    if "remark" in original:
        document["remark"] = original["remark"]
    return document
