"""What a booking records about how it was priced (invariant 7), as typed values.

Every transaction carries its traceability record (stored as ledger_transaction.rating), so
any number on a statement traces back to the tariff version, agreement version, rounding
policy and time zone that produced it; the full per-period breakdown travels on
roamclear.cdr.rated and can be recomputed deterministically from the archived CDR.

A charge's record (`ChargeTrace`) and a reversal's (`ReversalTrace`, the original's
references and VAT breakdown with every amount negated) are written as JSON by `as_json`;
`ChargeTrace.from_json` reads a stored one back, exactly (amounts are JSON strings, so
`Decimal(text)` and `str(...)` round-trip them digit for digit):

    >>> line = VatLine(Decimal("21"), Decimal("10.0000"), Decimal("12.1000"))
    >>> line.as_json()
    {'vat': '21', 'excl_vat': '10.0000', 'incl_vat': '12.1000'}
    >>> line.negated().as_json()
    {'vat': '21', 'excl_vat': '-10.0000', 'incl_vat': '-12.1000'}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from schemas.hub.agreement import (
    Agreement,
    FeePayer,
    RoundingMode,
    RoundingPolicy,
    SettlementBasis,
    SettlementPeriod,
)
from schemas.ocpi.cdr import Cdr
from settlement.allocation import Allocation
from settlement.money import RATING_CONTEXT, round_posting
from settlement.rating import RatedCdr
from settlement.rating.model import TariffRef


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _number(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@dataclass(frozen=True, slots=True)
class AgreementRef:
    """Which agreement version split the money."""

    agreement_id: str
    version: int

    def as_json(self) -> dict[str, Any]:
        return {"agreement_id": self.agreement_id, "version": self.version}


@dataclass(frozen=True, slots=True)
class TotalTrace:
    """A CDR total excl. and incl. VAT, as the hub priced it or the CPO declared it."""

    excl_vat: Decimal | None
    incl_vat: Decimal | None

    def as_json(self) -> dict[str, Any]:
        return {"excl_vat": _text(self.excl_vat), "incl_vat": _text(self.incl_vat)}


@dataclass(frozen=True, slots=True)
class VatLine:
    """One VAT rate's share of the settled amount; `vat` None: no rate (or an adjustment)."""

    vat: Decimal | None
    excl_vat: Decimal
    incl_vat: Decimal
    adjustment: bool = False  # the settled amount minus the priced components

    def negated(self) -> VatLine:
        return VatLine(self.vat, -self.excl_vat, -self.incl_vat, self.adjustment)

    def as_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "vat": None if self.vat is None else str(self.vat),
            "excl_vat": str(self.excl_vat),
            "incl_vat": str(self.incl_vat),
        }
        if self.adjustment:
            line["adjustment"] = True
        return line

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> VatLine:
        return cls(
            _number(line["vat"]),
            Decimal(line["excl_vat"]),
            Decimal(line["incl_vat"]),
            bool(line.get("adjustment", False)),
        )


_ZERO: Final = Decimal(0)
# a VAT rate's key in the breakdown (equal rates, 20 and 20.0, share one), by rate: a stream
# repeats a handful of rates
_RATE_KEYS: dict[Decimal, str] = {}
RATE_KEYS_MAX: Final = 1_024


def _rate_key(vat: Decimal) -> str:
    key = _RATE_KEYS.get(vat)
    if key is None:
        if len(_RATE_KEYS) >= RATE_KEYS_MAX:
            _RATE_KEYS.clear()
        key = _RATE_KEYS[vat] = str(vat.normalize())
    return key


def vat_breakdown(
    rated: RatedCdr, settled_excl: Decimal, settled_incl: Decimal
) -> tuple[VatLine, ...]:
    """Excl./incl. VAT per VAT rate of the priced components; where the settled amount
    differs from their sum (min/max price, CPO-declared basis, rounding), the difference is a
    line with rate null, so the breakdown always adds up to the settled amount."""
    excl: dict[str, Decimal] = {}
    incl: dict[str, Decimal] = {}
    rates: dict[str, Decimal | None] = {}
    sign = -1 if rated.credit else 1
    add = RATING_CONTEXT.add
    for period in rated.periods:
        for charge in period.charges:
            vat, cost = charge.vat, charge.cost
            rate = "none" if vat is None else _rate_key(vat)
            if rate not in rates:
                rates[rate] = None if vat is None else Decimal(rate)
                excl[rate] = incl[rate] = _ZERO
            excl[rate] = add(excl[rate], cost.excl_vat)
            incl[rate] = add(incl[rate], cost.excl_vat if cost.incl_vat is None else cost.incl_vat)
    lines = [
        VatLine(rates[rate], round_posting(sign * excl[rate]), round_posting(sign * incl[rate]))
        for rate in sorted(excl)
    ]
    rest_excl = settled_excl - sum((line.excl_vat for line in lines), Decimal(0))
    rest_incl = settled_incl - sum((line.incl_vat for line in lines), Decimal(0))
    if rest_excl or rest_incl:
        lines.append(VatLine(None, rest_excl, rest_incl, adjustment=True))
    return tuple(lines)


def _tariff_json(tariff: TariffRef) -> dict[str, Any]:
    return {
        "id": tariff.id,
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "last_updated": None if tariff.last_updated is None else tariff.last_updated.isoformat(),
        "content_hash": tariff.content_hash,
    }


def _tariff(data: Mapping[str, Any]) -> TariffRef:
    updated = data["last_updated"]
    return TariffRef(
        data["id"],
        data["country_code"],
        data["party_id"],
        None if updated is None else datetime.fromisoformat(updated),
        data["content_hash"],
    )


@dataclass(frozen=True, slots=True)
class ChargeTrace:
    """How a charge was priced and split: the `rating` of a CHARGE transaction."""

    tariff: TariffRef
    agreement: AgreementRef
    settles: SettlementBasis
    fee_payer: FeePayer
    rounding: RoundingPolicy
    settlement_period: SettlementPeriod
    time_zone: str | None
    hub_total: TotalTrace
    declared_total: TotalTrace
    price_limit: str | None  # "min_price" or "max_price" when one changed the hub's total
    allocation: Allocation
    vat_breakdown: tuple[VatLine, ...]

    @classmethod
    def of(
        cls, cdr: Cdr, rated: RatedCdr, agreement: Agreement, allocation: Allocation
    ) -> ChargeTrace:
        return cls(
            tariff=rated.tariff,
            agreement=AgreementRef(agreement.agreement_id, agreement.version),
            settles=agreement.settles,
            fee_payer=agreement.fee_payer,
            rounding=agreement.rounding,
            settlement_period=agreement.settlement_period,
            time_zone=rated.time_zone,
            hub_total=TotalTrace(
                rated.totals.total_cost.excl_vat, rated.totals.total_cost.incl_vat
            ),
            declared_total=TotalTrace(cdr.total_cost.excl_vat, cdr.total_cost.incl_vat),
            price_limit=rated.price_limit,
            allocation=allocation,
            vat_breakdown=vat_breakdown(
                rated, allocation.amount_excl_vat, allocation.amount_incl_vat
            ),
        )

    def as_json(self) -> dict[str, Any]:
        # written out (no helper calls, `_value_` rather than the `value` property): one per
        # booked CDR, on the clearing agent's hot path
        allocation, tariff, hub, declared = (
            self.allocation,
            self.tariff,
            self.hub_total,
            self.declared_total,
        )
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
            "agreement": {
                "agreement_id": self.agreement.agreement_id,
                "version": self.agreement.version,
            },
            "settles": self.settles._value_,
            "fee_payer": self.fee_payer._value_,
            "rounding": {
                "mode": self.rounding.mode._value_,
                "decimals": self.rounding.decimals,
            },
            "settlement_period": self.settlement_period._value_,
            "time_zone": self.time_zone,
            "hub_total": {
                "excl_vat": None if hub.excl_vat is None else str(hub.excl_vat),
                "incl_vat": None if hub.incl_vat is None else str(hub.incl_vat),
            },
            "declared_total": {
                "excl_vat": None if declared.excl_vat is None else str(declared.excl_vat),
                "incl_vat": None if declared.incl_vat is None else str(declared.incl_vat),
            },
            "price_limit": self.price_limit,
            "allocation": {
                "amount_excl_vat": str(allocation.amount_excl_vat),
                "amount_incl_vat": str(allocation.amount_incl_vat),
                "fee": str(allocation.fee),
                "emsp_owes": str(allocation.emsp_owes),
                "cpo_owed": str(allocation.cpo_owed),
            },
            "vat_breakdown": [line.as_json() for line in self.vat_breakdown],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChargeTrace:
        """A stored charge's record, exactly as `as_json` wrote it (KeyError, TypeError or
        ValueError for anything else)."""
        if data["kind"] != "CHARGE":
            raise ValueError(f"not a charge's record: {data['kind']!r}")
        allocation, rounding = data["allocation"], data["rounding"]
        return cls(
            tariff=_tariff(data["tariff"]),
            agreement=AgreementRef(data["agreement"]["agreement_id"], data["agreement"]["version"]),
            settles=SettlementBasis(data["settles"]),
            fee_payer=FeePayer(data["fee_payer"]),
            rounding=RoundingPolicy(
                mode=RoundingMode(rounding["mode"]), decimals=rounding["decimals"]
            ),
            settlement_period=SettlementPeriod(data["settlement_period"]),
            time_zone=data["time_zone"],
            hub_total=TotalTrace(
                _number(data["hub_total"]["excl_vat"]), _number(data["hub_total"]["incl_vat"])
            ),
            declared_total=TotalTrace(
                _number(data["declared_total"]["excl_vat"]),
                _number(data["declared_total"]["incl_vat"]),
            ),
            price_limit=data["price_limit"],
            allocation=Allocation(
                Decimal(allocation["amount_excl_vat"]),
                Decimal(allocation["amount_incl_vat"]),
                Decimal(allocation["fee"]),
                Decimal(allocation["emsp_owes"]),
                Decimal(allocation["cpo_owed"]),
            ),
            vat_breakdown=tuple(VatLine.from_json(line) for line in data["vat_breakdown"]),
        )


@dataclass(frozen=True, slots=True)
class ReversalTrace:
    """A reversal's record: the original it reverses, that original's references and VAT
    breakdown negated (its settlement period is the original's)."""

    reverses: str  # the original's transaction id
    original: ChargeTrace

    def as_json(self) -> dict[str, Any]:
        original = self.original
        return {
            "kind": "REVERSAL",
            "reverses": self.reverses,
            "settlement_period": original.settlement_period.value,
            "original": {
                "tariff": _tariff_json(original.tariff),
                "agreement": original.agreement.as_json(),
                "settles": original.settles.value,
            },
            "vat_breakdown": [line.negated().as_json() for line in original.vat_breakdown],
        }


Trace = ChargeTrace | ReversalTrace
