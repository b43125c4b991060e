"""OCPI 2.2.1 Token (mod_tokens.asciidoc): an eMSP's driver credential, as sent to CPOs."""

from __future__ import annotations

from schemas.base import OcpiModel
from schemas.ocpi.enums import ProfileType, TokenType, WhitelistType
from schemas.ocpi.types import (
    CiString36,
    CountryCode,
    DateTime,
    LanguageCode,
    PartyId,
    String64,
)


class EnergyContract(OcpiModel):
    """The driver's own energy supplier contract, where a charge point supports it."""

    supplier_name: String64
    contract_id: String64 | None = None


class Token(OcpiModel):
    """An OCPI 2.2.1 Token."""

    country_code: CountryCode
    party_id: PartyId
    uid: CiString36
    type: TokenType
    contract_id: CiString36
    visual_number: String64 | None = None
    issuer: String64
    group_id: CiString36 | None = None
    valid: bool
    whitelist: WhitelistType
    language: LanguageCode | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: DateTime
