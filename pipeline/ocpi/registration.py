"""The rules of the credentials handshake both directions share: who the hub says it is, which
roles a partner may present, and which of the partner's endpoints the hub needs.

The hub presents itself with role HUB only, under `ROAMCLEAR_HUB_PARTY` (OCPI 2.2.1: "A Hub
SHALL only reports itself as role: Hub"), with `ROAMCLEAR_HUB_NAME` / `ROAMCLEAR_HUB_WEBSITE`
as business details and its public versions URL:

    {"token": "<the token for the partner>", "url": "https://hub.example/ocpi/versions",
     "roles": [{"role": "HUB", "party_id": "HUB", "country_code": "ZZ",
                "business_details": {"name": "roamclear hub"}}]}

A partner connects as the one party its invitation named, in the roles it is registered for
(`partners add --role`): a CPO as CPO, an eMSP as EMSP, BOTH as either or both. Other parties
in `roles` are refused rather than ignored: the hub would answer every object pushed for them
with 404, which is worse to debug than a refused registration.

Endpoints the hub needs, by role: `credentials` from everyone (to update or end the
connection), and from an eMSP `cdrs` as RECEIVER (the hub delivers priced CDRs to it). A
CPO pushes to the hub; nothing else of a CPO's is called today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from pipeline.config import Settings
from pipeline.ocpi.envelope import OcpiStatus
from pipeline.ocpi.partner_api import HandshakeFailed
from pipeline.ocpi.paths import public_versions_url
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.credentials import (
    BusinessDetails,
    Credentials,
    CredentialsRole,
    InterfaceRole,
    Role,
    VersionDetails,
)
from schemas.validation import violations_from

# partner.role (partners add) -> the OCPI roles it may present
ALLOWED_ROLES: Final[Mapping[PartnerRole, frozenset[Role]]] = {
    PartnerRole.CPO: frozenset({Role.CPO}),
    PartnerRole.EMSP: frozenset({Role.EMSP}),
    PartnerRole.BOTH: frozenset({Role.CPO, Role.EMSP}),
}


@dataclass(frozen=True, slots=True)
class Need:
    """An endpoint of the partner's the hub needs, and why (shown when it is missing)."""

    identifier: str
    role: InterfaceRole | None  # None: either (credentials: the role "is not relevant")
    why: str

    def __str__(self) -> str:
        return self.identifier if self.role is None else f"{self.identifier} ({self.role})"


_CREDENTIALS = Need("credentials", None, "to update or end the connection")
NEEDS: Final[Mapping[Role, tuple[Need, ...]]] = {
    Role.CPO: (_CREDENTIALS,),
    Role.EMSP: (
        _CREDENTIALS,
        Need("cdrs", InterfaceRole.RECEIVER, "the hub delivers priced CDRs to an eMSP"),
    ),
}


@dataclass(frozen=True, slots=True)
class HubIdentity:
    """How the hub presents itself in its credentials."""

    party: PartyRef
    name: str
    website: str | None
    versions_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> HubIdentity:
        """From ROAMCLEAR_HUB_PARTY, _HUB_NAME, _HUB_WEBSITE, _PUBLIC_URL; ValueError names
        the setting that does not make valid OCPI credentials."""
        identity = cls(
            party=PartyRef.parse(settings.hub_party),
            name=settings.hub_name,
            website=settings.hub_website,
            versions_url=public_versions_url(settings.public_url),
        )
        identity.credentials("check")  # refuses a name > 100 chars, a website or URL not http(s)
        return identity

    def credentials(self, token: str) -> dict[str, Any]:
        """The hub's Credentials object carrying `token` (for the partner to call the hub)."""
        try:
            credentials = Credentials(
                token=token,
                url=self.versions_url,
                roles=(
                    CredentialsRole(
                        role=Role.HUB,
                        business_details=BusinessDetails(name=self.name, website=self.website),
                        party_id=self.party.party_id,
                        country_code=self.party.country_code,
                    ),
                ),
            )
        except ValidationError as exc:
            problems = "; ".join(str(v) for v in violations_from(exc))
            raise ValueError(
                "the hub's credentials are not valid OCPI (ROAMCLEAR_HUB_NAME at most 100 "
                f"characters; ROAMCLEAR_PUBLIC_URL and ROAMCLEAR_HUB_WEBSITE http(s)): {problems}"
            ) from None
        return credentials.model_dump(mode="json", exclude_none=True)


def role_problems(
    credentials: Credentials, partner: PartyRef, partner_role: PartnerRole
) -> list[str]:
    """Why the partner's roles cannot be accepted for `partner` (empty: they can)."""
    allowed = ALLOWED_ROLES[partner_role]
    names = " or ".join(sorted(allowed))
    problems = []
    for index, role in enumerate(credentials.roles):
        if role.party() != str(partner):
            problems.append(
                f"roles[{index}]: {role.party()} is not {partner}, the party this token belongs "
                "to (one party per connection: each party registers with its own invitation)"
            )
        elif role.role not in allowed:
            problems.append(
                f"roles[{index}].role: {partner} is registered at the hub as {names}, "
                f"not {role.role.value}"
            )
    return problems


def needs(partner_role: PartnerRole) -> tuple[Need, ...]:
    """The partner's endpoints the hub needs, for the roles it is registered for."""
    found: dict[str, Need] = {}
    for role in sorted(ALLOWED_ROLES[partner_role]):
        for need in NEEDS[role]:
            found.setdefault(str(need), need)
    return tuple(found.values())


def check_endpoints(details: VersionDetails, partner: PartyRef, partner_role: PartnerRole) -> None:
    """HandshakeFailed (3003) naming every endpoint the hub needs and the partner lacks."""
    missing = [
        need
        for need in needs(partner_role)
        if not any(
            e.identifier == need.identifier and (need.role is None or e.role == need.role)
            for e in details.endpoints
        )
    ]
    if missing:
        listed = "; ".join(f"{need}: {need.why}" for need in missing)
        raise HandshakeFailed(
            OcpiStatus.ENDPOINTS_MISSING,
            f"{partner}'s {details.version} endpoints lack what the hub needs: {listed}",
        )
