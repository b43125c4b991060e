"""A CPO's tariff deletion (OCPI 2.2.1 Tariffs DELETE: "no longer in use and will not be used
in future either"), the payload of `tariff.deleted` on the compacted tariff topic.

The hub keeps every version: a session that started before `deleted_at` is still priced by
the version in force at its start; a session from `deleted_at` on finds no tariff (until
the CPO PUTs it again). `deleted_at` is the hub's clock when the DELETE arrived.

    {"country_code": "NL", "party_id": "TNM", "id": "AC-STANDARD",
     "deleted_at": "2026-12-03T10:00:00Z"}
"""

from __future__ import annotations

from schemas.base import HubModel
from schemas.ocpi.types import CiString36, CountryCode, DateTime, PartyId


class TariffDeletionNotice(HubModel):
    """Which tariff its CPO deleted, and when the hub received the DELETE."""

    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    deleted_at: DateTime
