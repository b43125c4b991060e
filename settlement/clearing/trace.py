"""What a booking records about how it was priced (invariant 7) and its VAT breakdown.

The summary is stored with every transaction (ledger_transaction.rating) so any number on a
statement traces back to the tariff version, agreement version, rounding policy and time zone
that produced it; the full per-period breakdown travels on roamclear.cdr.rated and can be
recomputed deterministically from the archived CDR.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from settlement.clearing.outcome import Booked
from settlement.money import RATING_CONTEXT, round_posting
from settlement.rating import RatedCdr


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def vat_breakdown(rated: RatedCdr, settled_excl: Decimal, settled_incl: Decimal) -> list[Any]:
    """Excl./incl. VAT per VAT rate of the priced components; where the settled amount
    differs from their sum (min/max price, CPO-declared basis, rounding), the difference is a
    line with rate null, so the breakdown always adds up to the settled amount."""
    excl: defaultdict[str, Decimal] = defaultdict(Decimal)
    incl: defaultdict[str, Decimal] = defaultdict(Decimal)
    sign = -1 if rated.credit else 1
    for period in rated.periods:
        for charge in period.charges:
            rate = "none" if charge.vat is None else str(charge.vat.normalize())
            excl[rate] = RATING_CONTEXT.add(excl[rate], charge.cost.excl_vat)
            incl_cost = (
                charge.cost.incl_vat if charge.cost.incl_vat is not None else charge.cost.excl_vat
            )
            incl[rate] = RATING_CONTEXT.add(incl[rate], incl_cost)
    amounts = {
        rate: (round_posting(sign * excl[rate]), round_posting(sign * incl[rate]))
        for rate in sorted(excl)
    }
    lines: list[dict[str, Any]] = [
        {"vat": None if rate == "none" else rate, "excl_vat": str(e), "incl_vat": str(i)}
        for rate, (e, i) in amounts.items()
    ]
    rest_excl = settled_excl - sum((e for e, _ in amounts.values()), Decimal(0))
    rest_incl = settled_incl - sum((i for _, i in amounts.values()), Decimal(0))
    if rest_excl or rest_incl:
        lines.append(
            {
                "vat": None,
                "excl_vat": str(rest_excl),
                "incl_vat": str(rest_incl),
                "adjustment": True,
            }
        )
    return lines


def booking_summary(booked: Booked) -> dict[str, Any]:
    """The `rating` jsonb of a charge."""
    rated, agreement, allocation = booked.rated, booked.agreement, booked.allocation
    assert rated is not None and agreement is not None and allocation is not None
    tariff = rated.tariff
    return {
        "kind": "CHARGE",
        "tariff": {
            "id": tariff.id,
            "country_code": tariff.country_code,
            "party_id": tariff.party_id,
            "last_updated": None
            if tariff.last_updated is None
            else tariff.last_updated.isoformat(),
            "content_hash": tariff.content_hash,
        },
        "agreement": {"agreement_id": agreement.agreement_id, "version": agreement.version},
        "settles": agreement.settles.value,
        "fee_payer": agreement.fee_payer.value,
        "rounding": {
            "mode": agreement.rounding.mode.value,
            "decimals": agreement.rounding.decimals,
        },
        "settlement_period": agreement.settlement_period.value,
        "time_zone": rated.time_zone,
        "hub_total": {
            "excl_vat": _text(rated.totals.total_cost.excl_vat),
            "incl_vat": _text(rated.totals.total_cost.incl_vat),
        },
        "declared_total": {
            "excl_vat": _text(booked.cdr.total_cost.excl_vat),
            "incl_vat": _text(booked.cdr.total_cost.incl_vat),
        },
        "price_limit": rated.price_limit,
        "allocation": {
            "amount_excl_vat": str(allocation.amount_excl_vat),
            "amount_incl_vat": str(allocation.amount_incl_vat),
            "fee": str(allocation.fee),
            "emsp_owes": str(allocation.emsp_owes),
            "cpo_owed": str(allocation.cpo_owed),
        },
        "vat_breakdown": vat_breakdown(
            rated, allocation.amount_excl_vat, allocation.amount_incl_vat
        ),
    }


def reversal_summary(original: dict[str, Any], original_id: str) -> dict[str, Any]:
    """The `rating` jsonb of a reversal: the original's, every amount negated."""

    def negate(text: str | None) -> str | None:
        return None if text is None else str(-Decimal(text))

    return {
        "kind": "REVERSAL",
        "reverses": original_id,
        "settlement_period": original.get("settlement_period"),
        "original": {key: original.get(key) for key in ("tariff", "agreement", "settles")},
        "vat_breakdown": [
            {**line, "excl_vat": negate(line["excl_vat"]), "incl_vat": negate(line["incl_vat"])}
            for line in original.get("vat_breakdown", [])
        ],
    }
