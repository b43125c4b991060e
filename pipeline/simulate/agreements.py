"""Roaming agreements of a scenario, and which CPO-eMSP pairs they cover.

Every second CPO (the 2nd, 4th, ...) has a default agreement (`emsp` None) and specific
agreements with about half of the eMSPs; the others have no default and specific agreements
with all but about a fifth of the eMSPs. So the first CPO always leaves at least one eMSP
uncovered: the pairs for the `no_agreement` category. Terms vary by the seed: hub fee
(percent and/or fixed, minimum, maximum), fee payer, settlement period, settlement basis and
tolerance. The first agreement has a tolerance of at least 0.05, so there is always a pair
where a declared total may differ from the hub's price and still be booked.

    tnm-default is absent; nl-tnm-de-emp: 1.5 % + 0.05, min 0.10, CPO pays, MONTHLY,
    HUB_COMPUTED, tolerance 0.01
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from pipeline.simulate.partners import Partner
from schemas.hub.agreement import (
    Agreement,
    FeePayer,
    HubFee,
    SettlementBasis,
    SettlementPeriod,
)

TOLERANCES: Final = (Decimal("0"), Decimal("0.01"), Decimal("0.05"), Decimal("0.10"))
MISMATCH_DELTA_MIN: Final = Decimal("0.02")  # beyond rating's default 0.01 tolerance


@dataclass(frozen=True, slots=True)
class Coverage:
    """Who may charge whom: the agreement in force for each pair, and the uncovered pairs."""

    covered: tuple[tuple[tuple[int, Agreement], ...], ...]  # per CPO: (eMSP index, agreement)
    uncovered: tuple[tuple[int, int], ...]  # (CPO index, eMSP index) without any agreement

    def tolerant(self, cpo_index: int) -> tuple[tuple[int, Agreement], ...]:
        """Pairs of a CPO whose tolerance admits a declared-total mismatch."""
        return tuple(
            (emsp, agreement)
            for emsp, agreement in self.covered[cpo_index]
            if agreement.tolerance >= MISMATCH_DELTA_MIN
        )


def _hub_fee(rng: random.Random) -> HubFee:
    kind = rng.randrange(4)
    percent = rng.choice((Decimal("0.5"), Decimal("1.0"), Decimal("1.5"), Decimal("2.5")))
    fixed = rng.choice((Decimal("0.05"), Decimal("0.10"), Decimal("0.15")))
    if kind == 0:
        return HubFee(percent=percent)
    if kind == 1:
        return HubFee(fixed=fixed)
    if kind == 2:
        return HubFee(percent=percent, minimum=Decimal("0.10"), maximum=Decimal("1.00"))
    return HubFee(percent=percent, fixed=fixed, minimum=Decimal("0.10"))


def _agreement(
    cpo: Partner,
    emsp: Partner | None,
    currency: str,
    valid_from: datetime,
    rng: random.Random,
    tolerance: Decimal | None = None,
) -> Agreement:
    cpo_ref = cpo.party
    suffix = "default" if emsp is None else f"{emsp.party.country_code}-{emsp.party.party_id}"
    return Agreement(
        agreement_id=f"{cpo_ref.country_code}-{cpo_ref.party_id}-{suffix}".lower(),
        version=1,
        cpo=cpo_ref,
        emsp=None if emsp is None else emsp.party,
        currency=currency,
        valid_from=valid_from,
        hub_fee=_hub_fee(rng),
        fee_payer=rng.choice(tuple(FeePayer)),
        settlement_period=rng.choice(tuple(SettlementPeriod)),
        settles=(
            SettlementBasis.CPO_DECLARED if rng.randrange(4) == 0 else SettlementBasis.HUB_COMPUTED
        ),
        tolerance=rng.choice(TOLERANCES) if tolerance is None else tolerance,
        allow_embedded_tariff=rng.randrange(2) == 0,
    )


def build_agreements(
    cpos: tuple[Partner, ...],
    emsps: tuple[Partner, ...],
    currency: str,
    valid_from: datetime,
    rng: random.Random,
) -> tuple[tuple[Agreement, ...], Coverage]:
    """The agreements (specific ones first per CPO, then its default) and their coverage."""
    agreements: list[Agreement] = []
    covered: list[tuple[tuple[int, Agreement], ...]] = []
    uncovered: list[tuple[int, int]] = []
    for cpo_index, cpo in enumerate(cpos):
        has_default = cpo_index % 2 == 1
        if has_default:
            specific = set(rng.sample(range(len(emsps)), max(1, len(emsps) // 2)))
        else:
            skipped = set(rng.sample(range(len(emsps)), max(1, len(emsps) // 5)))
            specific = set(range(len(emsps))) - skipped
        pairs: list[tuple[int, Agreement]] = []
        for emsp_index in sorted(specific):
            first = not agreements
            tolerance = Decimal("0.05") if first else None
            agreement = _agreement(cpo, emsps[emsp_index], currency, valid_from, rng, tolerance)
            agreements.append(agreement)
            pairs.append((emsp_index, agreement))
        if has_default:
            default = _agreement(cpo, None, currency, valid_from, rng)
            agreements.append(default)
            pairs += [(e, default) for e in range(len(emsps)) if e not in specific]
        else:
            uncovered += [(cpo_index, e) for e in range(len(emsps)) if e not in specific]
        covered.append(tuple(sorted(pairs, key=lambda pair: pair[0])))
    return tuple(agreements), Coverage(tuple(covered), tuple(uncovered))
