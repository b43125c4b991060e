"""Party and CDR identifiers: `PartyRef` ("NL*TNM") and `CdrKey` ("NL*TNM*CDR-1").

OCPI identifies a party by country code and party id, and a CDR by those plus its `id`.
All three are CiStrings (case-insensitive), so the canonical forms are upper case: `nl*tnm`
and `NL*TNM` are one party, and CDR ids `abc` and `ABC` are one CDR for deduplication.

    >>> str(PartyRef.parse("nl*tnm"))
    'NL*TNM'
    >>> CdrKey.parse("NL*TNM*cdr-1").cdr_id
    'CDR-1'
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from pydantic import field_validator

from schemas.base import HubModel
from schemas.ocpi.types import CiString39

if TYPE_CHECKING:
    from schemas.ocpi.cdr import Cdr

SEPARATOR: Final = "*"
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PARTY = re.compile(r"^[A-Z0-9]{3}$")


class PartyRef(HubModel):
    """A CPO or eMSP: ISO 3166-1 alpha-2 country code and 3-character party id."""

    country_code: str
    party_id: str

    @field_validator("country_code", mode="before")
    @classmethod
    def _country(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.upper()
            if not _COUNTRY.match(value):
                raise ValueError("must be 2 letters (ISO 3166-1 alpha-2)")
        return value

    @field_validator("party_id", mode="before")
    @classmethod
    def _party(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.upper()
            if not _PARTY.match(value):
                raise ValueError("must be 3 letters or digits")
        return value

    @classmethod
    def parse(cls, text: str) -> PartyRef:
        """`"NL*TNM"` (any case) -> PartyRef; ValueError when malformed."""
        country_code, separator, party_id = text.partition(SEPARATOR)
        if not separator:
            raise ValueError(f"not a party reference (CC*PID): {text!r}")
        return cls(country_code=country_code, party_id=party_id)

    @classmethod
    def of(cls, country_code: str, party_id: str) -> PartyRef:
        """The party with these codes (any case), shared: parties are immutable, and the
        clearing agent names the same few parties for every CDR."""
        return _party(country_code, party_id)

    def __str__(self) -> str:
        return f"{self.country_code}{SEPARATOR}{self.party_id}"


class PartnerRole(StrEnum):
    """What a partner is registered at the hub as (partner.role; OCPI's own roles are
    schemas.ocpi.credentials.Role)."""

    CPO = "CPO"  # operates charge points: submits CDRs, is owed for them
    EMSP = "EMSP"  # issues the drivers' tokens: owes for their CDRs
    BOTH = "BOTH"  # either, CDR by CDR

    @property
    def as_cpo(self) -> bool:
        """Whether the partner may submit CDRs as their CPO."""
        return self is not PartnerRole.EMSP

    @property
    def as_emsp(self) -> bool:
        """Whether the partner may be the eMSP a CDR is charged to."""
        return self is not PartnerRole.CPO


class CdrKey(HubModel):
    """Canonical key of a CDR, `{country_code}*{party_id}*{id}`, upper case.

    It keys roamclear.cdr.submitted after re-keying and the one-booking-per-CDR constraint.
    """

    party: PartyRef
    cdr_id: CiString39

    @field_validator("cdr_id", mode="after")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value.upper()

    @classmethod
    def parse(cls, text: str) -> CdrKey:
        """`"NL*TNM*CDR-1"` -> CdrKey. The id may itself contain `*`."""
        parts = text.split(SEPARATOR, 2)
        if len(parts) != 3:
            raise ValueError(f"not a CDR key (CC*PID*ID): {text!r}")
        country_code, party_id, cdr_id = parts
        return cls(party=PartyRef(country_code=country_code, party_id=party_id), cdr_id=cdr_id)

    @classmethod
    def of(cls, cdr: Cdr) -> CdrKey:
        """The key of a CDR itself (for a credit CDR, see `credited_key`)."""
        return _cdr_key(cdr.country_code, cdr.party_id, cdr.id)

    @classmethod
    def credited_key(cls, cdr: Cdr) -> CdrKey | None:
        """For a credit CDR, the key of the CDR it credits; None for a normal CDR."""
        if not cdr.is_credit or cdr.credit_reference_id is None:
            return None
        return _cdr_key(cdr.country_code, cdr.party_id, cdr.credit_reference_id)

    @classmethod
    def partition_key(cls, cdr: Cdr) -> CdrKey:
        """The Kafka key: a credit CDR is keyed by the CDR it credits (DESIGN.md), so both
        meet on one partition."""
        return cls.credited_key(cdr) or cls.of(cdr)

    def __str__(self) -> str:
        return f"{self.party}{SEPARATOR}{self.cdr_id}"


# Validated once per distinct value: a CDR's key is asked for by dedupe, the decision, the
# output events and the rows, and a batch holds up to a few thousand CDRs. Invalid values
# raise every time (lru_cache keeps only results).
@lru_cache(maxsize=4_096)
def _party(country_code: str, party_id: str) -> PartyRef:
    return PartyRef(country_code=country_code, party_id=party_id)


@lru_cache(maxsize=16_384)
def _cdr_key(country_code: str, party_id: str, cdr_id: str) -> CdrKey:
    return CdrKey(party=_party(country_code, party_id), cdr_id=cdr_id)
