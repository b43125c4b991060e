"""Short constructors for clearing tests: the sample partners, tariff, agreement, CDRs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from schemas.base import loads_exact
from schemas.hub.agreement import Agreement
from schemas.hub.party import CdrKey, PartnerRole, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff
from settlement.clearing.decode import Decoded
from settlement.clearing.entry import Booking
from settlement.clearing.reference import TariffLifecycleEvent

NOW = datetime(2026, 4, 1, tzinfo=UTC)
TNM = PartyRef(country_code="NL", party_id="TNM")
EMP = PartyRef(country_code="DE", party_id="EMP")
EVB = PartyRef(country_code="BE", party_id="EVB")


def _sample(name: str) -> Any:
    return loads_exact(resources.files("pipeline.samples").joinpath(name).read_bytes())


def tariff() -> Tariff:
    return Tariff.model_validate(_sample("tariff_nl_tnm_ac.json"))


def agreement(**changes: Any) -> Agreement:
    data = _sample("agreement_nl_tnm_default.json")
    data.update(changes)
    return Agreement.model_validate(data)


def cdr_data(index: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = _sample("cdrs_nl_tnm.json")[index]
    return data


def cdr(index: int = 0, **changes: Any) -> Cdr:
    data = cdr_data(index)
    data.update(changes)
    return Cdr.model_validate(data)


def decoded(value: Cdr, submitter: PartyRef = TNM) -> Decoded:
    return Decoded(event_id="00000000-0000-0000-0000-000000000001", submitter=submitter, cdr=value)


class FakeReferences:
    """A ReferenceView over plain lists."""

    def __init__(
        self,
        tariffs: Sequence[Tariff] = (),
        agreements: Sequence[Agreement] = (),
        roles: dict[str, PartnerRole] | None = None,
        zones: dict[str, str] | None = None,
        lifecycle: dict[str, Sequence[TariffLifecycleEvent]] | None = None,
    ) -> None:
        self._tariffs = list(tariffs)
        self._agreements = list(agreements)
        self._roles = (
            roles
            if roles is not None
            else {"NL*TNM": PartnerRole.CPO, "DE*EMP": PartnerRole.EMSP, "BE*EVB": PartnerRole.EMSP}
        )
        self._zones = zones if zones is not None else {"LOC-AMS-0001": "Europe/Amsterdam"}
        self._lifecycle = lifecycle or {}  # by upper-case tariff id

    def partner_role(self, party: PartyRef) -> PartnerRole | None:
        return self._roles.get(str(party))

    def tariff_versions(self, cpo: PartyRef, tariff_id: str) -> Sequence[Tariff]:
        return [t for t in self._tariffs if t.id.upper() == tariff_id.upper()]

    def tariff_ids(self, cpo: PartyRef) -> Sequence[str]:
        return sorted({t.id for t in self._tariffs})

    def tariff_lifecycle(self, cpo: PartyRef, tariff_id: str) -> Sequence[TariffLifecycleEvent]:
        return self._lifecycle.get(tariff_id.upper(), ())

    def agreements(self, cpo: PartyRef, emsp: PartyRef | None) -> Sequence[Agreement]:
        return [a for a in self._agreements if a.cpo == cpo and a.emsp == emsp]

    def location_zone(self, cpo: PartyRef, location_id: str) -> str | None:
        return self._zones.get(location_id)

    def partner_key(self, key_id: str) -> None:
        return None


class FakeLedger:
    """A LedgerView over a dict."""

    def __init__(self, bookings: dict[str, Booking] | None = None) -> None:
        self.bookings = bookings or {}

    def booking(self, cdr_key: CdrKey) -> Booking | None:
        return self.bookings.get(str(cdr_key))


def money(text: str) -> Decimal:
    return Decimal(text)
