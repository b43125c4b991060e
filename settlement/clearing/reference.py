"""Choosing the reference data that applies to a CDR: tariff version, agreement, time zone.

- Tariff: among the registered versions of the tariff the CDR names, the newest one that was
  in force at the session's start (last_updated <= start, inside start/end_date_time),
  unless the CPO had deleted the tariff by then (OCPI DELETE: "no longer in use"; a later
  PUT restores it). A session that started before the DELETE is still priced by the version
  in force at its start, whenever its CDR arrives.
- Agreement: the version valid at the CDR's end; an agreement for the exact (CPO, eMSP)
  pair wins over the CPO's default for any eMSP.
- Time zone: the registered location's `time_zone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from schemas.hub.agreement import Agreement
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff


@dataclass(frozen=True, slots=True)
class TariffLifecycleEvent:
    """A tariff's DELETE (`deleted`) or the PUT that restored it after one, at the hub's
    clock when it arrived."""

    at: datetime
    deleted: bool


class ReferenceView(Protocol):
    """Read access to registered reference data (a cache over PostgreSQL in the agent)."""

    def partner_role(self, party: PartyRef) -> PartnerRole | None: ...

    def tariff_versions(self, cpo: PartyRef, tariff_id: str) -> Sequence[Tariff]: ...

    def tariff_ids(self, cpo: PartyRef) -> Sequence[str]: ...

    def tariff_lifecycle(self, cpo: PartyRef, tariff_id: str) -> Sequence[TariffLifecycleEvent]:
        """The tariff's deletions and restorations, oldest first."""
        ...

    def agreements(self, cpo: PartyRef, emsp: PartyRef | None) -> Sequence[Agreement]: ...

    def location_zone(self, cpo: PartyRef, location_id: str) -> str | None: ...


def tariff_in_force(versions: Sequence[Tariff], at: datetime) -> Tariff | None:
    """The newest version published by `at` whose validity window contains `at`."""
    best: Tariff | None = None
    for tariff in versions:
        if tariff.last_updated > at:
            continue
        if tariff.start_date_time is not None and at < tariff.start_date_time:
            continue
        if tariff.end_date_time is not None and at >= tariff.end_date_time:
            continue
        if best is None or tariff.last_updated > best.last_updated:
            best = tariff
    return best


def was_deleted(lifecycle: Sequence[TariffLifecycleEvent], at: datetime) -> bool:
    """Whether the tariff stood deleted at `at`: its last event by then was a deletion."""
    state = False
    for event in lifecycle:
        if event.at > at:
            break
        state = event.deleted
    return state


def named_tariff_ids(cdr: Cdr) -> tuple[str, ...]:
    """Tariff ids the CDR itself names: its periods' tariff_id, then its embedded tariffs."""
    names = [p.tariff_id for p in cdr.charging_periods if p.tariff_id is not None]
    names += [t.id for t in cdr.tariffs or ()]
    return tuple(dict.fromkeys(names))


def registered_tariff(cdr: Cdr, cpo: PartyRef, view: ReferenceView) -> Tariff | None:
    """The registered tariff version that priced the session, or None."""
    named = named_tariff_ids(cdr)
    if not named:
        registered = view.tariff_ids(cpo)
        named = tuple(registered) if len(registered) == 1 else ()
    for tariff_id in named:
        if was_deleted(view.tariff_lifecycle(cpo, tariff_id), cdr.start_date_time):
            continue
        tariff = tariff_in_force(view.tariff_versions(cpo, tariff_id), cdr.start_date_time)
        if tariff is not None:
            return tariff
    return None


def _valid_at(agreement: Agreement, at: datetime) -> bool:
    return agreement.valid_from <= at and (agreement.valid_to is None or at < agreement.valid_to)


def agreement_in_force(
    cpo: PartyRef, emsp: PartyRef, at: datetime, view: ReferenceView
) -> Agreement | None:
    """The pair's own agreement valid at `at`, else the CPO's default, else None."""
    for candidates in (view.agreements(cpo, emsp), view.agreements(cpo, None)):
        valid = [a for a in candidates if _valid_at(a, at)]
        if valid:
            return max(valid, key=lambda a: (a.valid_from, a.version))
    return None
