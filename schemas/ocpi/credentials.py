"""OCPI 2.2.1 Credentials and the version information they lead to (credentials.asciidoc,
version_information_endpoint.asciidoc, mod_locations.asciidoc BusinessDetails and Image).

A party's credentials say how to reach it: its versions URL, the token to call it with, and
the roles it plays (one per role and party, with business details). A minimal CPO::

    {"token": "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
     "url": "https://example.com/ocpi/versions",
     "roles": [{"role": "CPO", "party_id": "EXA", "country_code": "NL",
                "business_details": {"name": "Example Operator"}}]}

Validated strictly, every violation at once: the token is 1 to 64 printable ASCII characters
without whitespace (U+0021 to U+007E), URLs are absolute http(s) URLs of at most 255
characters, `roles` is not empty and no (role, party_id, country_code) appears twice. Unknown
fields are kept, as for every OCPI object.

`Versions` / `VersionDetails` are what a partner's versions and version details endpoints
answer; version numbers and module identifiers stay text, since a partner may list versions
and (custom) modules this hub does not know.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import OcpiModel, rule_error
from schemas.ocpi.types import CiString4, CountryCode, NonEmpty, PartyId, String100, Url

TOKEN_CHARS_MAX: Final = 64
IMAGE_PIXELS_MAX: Final = 99_999  # int(5)
URL_SCHEMES: Final = ("http", "https")


class Role(StrEnum):
    """A party's role on the platform (types.asciidoc, Role)."""

    CPO = "CPO"  # charge point operator
    EMSP = "EMSP"  # e-mobility service provider
    HUB = "HUB"  # a roaming hub
    NAP = "NAP"  # national access point (national database of locations)
    NSP = "NSP"  # navigation service provider (like an eMSP, for locations)
    OTHER = "OTHER"  # any other role
    SCSP = "SCSP"  # smart charging service provider


class InterfaceRole(StrEnum):
    """Which side of a module an endpoint implements."""

    SENDER = "SENDER"  # the owner of the data: the other side pulls from it
    RECEIVER = "RECEIVER"  # the other side pushes to it


class ImageCategory(StrEnum):
    """What an image shows (mod_locations, ImageCategory)."""

    CHARGER = "CHARGER"  # the physical device holding EVSEs
    ENTRANCE = "ENTRANCE"  # the location's car entrance
    LOCATION = "LOCATION"  # the location overview
    NETWORK = "NETWORK"  # logo of a roaming network
    OPERATOR = "OPERATOR"  # logo of the charge point operator
    OTHER = "OTHER"  # anything else
    OWNER = "OWNER"  # logo of the charge point owner


def _web_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
        raise PydanticCustomError("url", "must be an absolute http or https URL")
    return value


def _token_chars(value: str) -> str:
    if not all("!" <= char <= "~" for char in value):
        raise PydanticCustomError(
            "token_chars", "must be printable ASCII without whitespace (U+0021 to U+007E)"
        )
    return value


WebUrl = Annotated[Url, AfterValidator(_web_url)]
CredentialsToken = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TOKEN_CHARS_MAX),
    AfterValidator(_token_chars),
]
Pixels = Annotated[int, Field(ge=0, le=IMAGE_PIXELS_MAX)]


class Image(OcpiModel):
    """An image a browser can fetch (here: a party's logo)."""

    url: WebUrl
    thumbnail: WebUrl | None = None
    category: ImageCategory
    type: CiString4
    width: Pixels | None = None
    height: Pixels | None = None


class BusinessDetails(OcpiModel):
    """Who a party is: its name, website and logo."""

    name: String100
    website: WebUrl | None = None
    logo: Image | None = None


class CredentialsRole(OcpiModel):
    """One role a party plays, under one country code and party id."""

    role: Role
    business_details: BusinessDetails
    party_id: PartyId
    country_code: CountryCode

    def party(self) -> str:
        """`NL*TNM`: the party reference, upper case (CiStrings)."""
        return f"{self.country_code.upper()}*{self.party_id.upper()}"


class Credentials(OcpiModel):
    """How to reach a party: token, versions URL, roles."""

    token: CredentialsToken
    url: WebUrl
    roles: NonEmpty[CredentialsRole]

    @model_validator(mode="after")
    def _roles_unique(self) -> Credentials:
        seen: set[tuple[str, str]] = set()
        for index, role in enumerate(self.roles):
            key = (role.role.value, role.party())
            if key in seen:
                raise rule_error(
                    f"roles.{index}",
                    "role_repeated",
                    f"{role.role.value} {role.party()} is listed twice (each role, party_id "
                    "and country_code once)",
                )
            seen.add(key)
        return self


class Version(OcpiModel):
    """One OCPI version a party speaks and where its details are."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    url: WebUrl


class Endpoint(OcpiModel):
    """One module interface of a party."""

    identifier: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    role: InterfaceRole
    url: WebUrl


class VersionDetails(OcpiModel):
    """A party's endpoints for one version."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    endpoints: NonEmpty[Endpoint]
