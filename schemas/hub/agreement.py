"""Roaming agreements: how the hub prices, splits and settles a CPO's CDRs.

An agreement is versioned (`agreement_id`, `version`); every rated CDR records the version
that priced it. `emsp = None` makes it the CPO's default for any eMSP without a specific one.

Example: TNM's CDRs to any eMSP, hub fee 1.5 % of the ex-VAT cost, at least 0.05, paid by the
CPO, settled monthly on the hub's own computation, with 0.01 tolerance to the CPO's total, and
each completed session's CDR due within 48 hours (`cdr_deadline_h`, the default; OCPI itself
sets no deadline)::

    {"agreement_id": "tnm-default", "version": 3,
     "cpo": {"country_code": "NL", "party_id": "TNM"}, "currency": "EUR",
     "valid_from": "2025-01-01T00:00:00Z",
     "hub_fee": {"percent": 1.5, "minimum": 0.05}, "fee_payer": "CPO",
     "settlement_period": "MONTHLY", "settles": "HUB_COMPUTED", "tolerance": 0.01,
     "cdr_deadline_h": 48}
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Final, Self

from pydantic import Field, model_validator

from schemas.base import HubModel, rule_error
from schemas.hub.party import PartyRef
from schemas.ocpi.types import AMOUNT_DECIMALS_MAX, CurrencyCode, DateTime, NonNegativeAmount

CDR_DEADLINE_H_DEFAULT: Final = 48
"""Hours after a session completed within which its CDR is due, unless the agreement says."""
CDR_DEADLINE_H_MAX: Final = 24 * 92
"""OCPI allows CDRs "once a month"; a deadline beyond a quarter is a typing error."""


class RoundingMode(StrEnum):
    """Decimal rounding mode (OCPI leaves rounding to the parties)."""

    HALF_UP = "HALF_UP"  # ties away from zero (commercial rounding)
    HALF_EVEN = "HALF_EVEN"  # ties to even (banker's rounding)
    DOWN = "DOWN"  # towards zero (truncation)


class FeePayer(StrEnum):
    """Who pays the hub fee."""

    CPO = "CPO"  # deducted from what the eMSP owes the CPO
    EMSP = "EMSP"  # added to what the eMSP pays


class SettlementPeriod(StrEnum):
    """Length of a settlement batch."""

    DAILY = "DAILY"  # one batch per partner per day
    WEEKLY = "WEEKLY"  # one batch per partner per ISO week
    MONTHLY = "MONTHLY"  # one batch per partner per calendar month


class SettlementBasis(StrEnum):
    """Whose amount is booked when CPO and hub disagree within tolerance."""

    HUB_COMPUTED = "HUB_COMPUTED"  # the hub's rating of the CDR against the tariff
    CPO_DECLARED = "CPO_DECLARED"  # the CDR's total_cost as the CPO sent it


class RoundingPolicy(HubModel):
    """Rounding of CDR totals under this agreement."""

    mode: RoundingMode = RoundingMode.HALF_UP
    decimals: Annotated[int, Field(ge=0, le=AMOUNT_DECIMALS_MAX)] = AMOUNT_DECIMALS_MAX


class HubFee(HubModel):
    """The hub's fee per CDR: `percent` of the ex-VAT cost plus `fixed`, clamped to
    [`minimum`, `maximum`]. Absent parts count as nothing."""

    percent: Annotated[NonNegativeAmount, Field(le=100)] | None = None
    fixed: NonNegativeAmount | None = None
    minimum: NonNegativeAmount | None = None
    maximum: NonNegativeAmount | None = None

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.minimum is not None and self.maximum is not None and self.maximum < self.minimum:
            raise rule_error("maximum", "bounds_order", "must not be below minimum")
        return self


class Agreement(HubModel):
    """One version of a roaming agreement between a CPO and an eMSP (or any eMSP)."""

    agreement_id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)]
    cpo: PartyRef
    emsp: PartyRef | None = None
    currency: CurrencyCode
    valid_from: DateTime
    valid_to: DateTime | None = None
    rounding: RoundingPolicy = RoundingPolicy()
    hub_fee: HubFee = HubFee()
    fee_payer: FeePayer = FeePayer.CPO
    settlement_period: SettlementPeriod = SettlementPeriod.MONTHLY
    settles: SettlementBasis = SettlementBasis.HUB_COMPUTED
    tolerance: NonNegativeAmount = Decimal("0")
    allow_embedded_tariff: bool = False
    # a COMPLETED session without a CDR this long after its end is a missing CDR
    cdr_deadline_h: Annotated[int, Field(ge=0, le=CDR_DEADLINE_H_MAX)] = CDR_DEADLINE_H_DEFAULT

    @model_validator(mode="after")
    def _validity_ordered(self) -> Self:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise rule_error("valid_to", "date_order", "must be after valid_from")
        decimals = self.rounding.decimals
        for name in ("fixed", "minimum", "maximum"):
            amount = getattr(self.hub_fee, name)
            exponent = amount.as_tuple().exponent if amount is not None else 0
            # a bound finer than the rounding could not be met by a rounded fee
            if (
                isinstance(exponent, int)
                and -exponent > decimals
                and amount != amount.quantize(Decimal(1).scaleb(-decimals))
            ):
                raise rule_error(
                    f"hub_fee.{name}",
                    "precision",
                    f"must have at most {decimals} decimals (the agreement's rounding)",
                )
        return self
