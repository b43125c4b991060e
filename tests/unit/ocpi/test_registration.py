"""The handshake's rules: the hub presents role HUB only, a partner presents its own party in
the roles it is registered for, and the endpoints the hub needs per role."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.config import Settings
from pipeline.ocpi.envelope import OcpiStatus
from pipeline.ocpi.partner_api import HandshakeFailed, authorization
from pipeline.ocpi.registration import HubIdentity, check_endpoints, needs, role_problems
from schemas.hub.party import PartyRef
from schemas.ocpi.credentials import Credentials, VersionDetails
from tests.unit.schemas.test_credentials import credentials

TNM = PartyRef.parse("NL*TNM")


def _settings(**changes: object) -> Settings:
    base = Settings.from_env({"ROAMCLEAR_PUBLIC_URL": "https://hub.example/roam/"})
    return replace(base, **changes)  # type: ignore[arg-type]


def _roles(*roles: tuple[str, str]) -> Credentials:
    listed = [
        {
            "role": role,
            "party_id": party.split("*")[1],
            "country_code": party.split("*")[0],
            "business_details": {"name": "x"},
        }
        for role, party in roles
    ]
    return Credentials.model_validate(credentials(roles=listed))


def _details(*endpoints: tuple[str, str]) -> VersionDetails:
    return VersionDetails.model_validate(
        {
            "version": "2.2.1",
            "endpoints": [
                {"identifier": i, "role": r, "url": f"https://p.example/{i}"} for i, r in endpoints
            ],
        }
    )


def test_the_hub_presents_itself_as_hub_only() -> None:
    identity = HubIdentity.from_settings(
        _settings(hub_party="NL*RCH", hub_name="Roam Clear", hub_website="https://rc.example")
    )
    assert identity.credentials("tok") == {
        "token": "tok",
        "url": "https://hub.example/roam/ocpi/versions",
        "roles": [
            {
                "role": "HUB",
                "party_id": "RCH",
                "country_code": "NL",
                "business_details": {"name": "Roam Clear", "website": "https://rc.example"},
            }
        ],
    }


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"hub_name": "x" * 101}, "ROAMCLEAR_HUB_NAME"),
        ({"hub_website": "rc.example"}, "ROAMCLEAR_HUB_WEBSITE"),
        ({"public_url": "hub.example"}, "ROAMCLEAR_PUBLIC_URL"),
    ],
)
def test_settings_that_make_no_valid_credentials_are_refused_up_front(
    changes: dict[str, object], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        HubIdentity.from_settings(_settings(**changes))


def test_a_partner_presents_its_own_party_in_its_registered_roles() -> None:
    assert role_problems(_roles(("CPO", "NL*TNM")), TNM, "CPO") == []
    assert role_problems(_roles(("CPO", "nl*tnm"), ("EMSP", "NL*TNM")), TNM, "BOTH") == []
    assert role_problems(_roles(("EMSP", "NL*TNM")), TNM, "CPO") == [
        "roles[0].role: NL*TNM is registered at the hub as CPO, not EMSP"
    ]
    (other,) = role_problems(_roles(("CPO", "NL*TNM"), ("CPO", "NL*WHL")), TNM, "CPO")
    assert other.startswith("roles[1]: NL*WHL is not NL*TNM")
    (hub,) = role_problems(_roles(("HUB", "NL*TNM")), TNM, "BOTH")
    assert hub == "roles[0].role: NL*TNM is registered at the hub as CPO or EMSP, not HUB"


def test_the_endpoints_the_hub_needs_per_role() -> None:
    assert [str(n) for n in needs("CPO")] == ["credentials"]
    assert [str(n) for n in needs("EMSP")] == ["credentials", "cdrs (RECEIVER)"]
    assert [str(n) for n in needs("BOTH")] == ["credentials", "cdrs (RECEIVER)"]
    check_endpoints(_details(("credentials", "RECEIVER")), TNM, "CPO")  # role not relevant
    check_endpoints(_details(("credentials", "SENDER"), ("cdrs", "RECEIVER")), TNM, "EMSP")
    with pytest.raises(HandshakeFailed) as missing:
        check_endpoints(_details(("credentials", "SENDER"), ("cdrs", "SENDER")), TNM, "EMSP")
    assert missing.value.status is OcpiStatus.ENDPOINTS_MISSING
    assert missing.value.message == (
        "NL*TNM's 2.2.1 endpoints lack what the hub needs: cdrs (RECEIVER): the hub delivers "
        "priced CDRs to an eMSP"
    )


def test_the_outbound_token_header_is_base64_unless_the_partner_wants_it_raw() -> None:
    assert authorization("example-token", unencoded=False) == "Token ZXhhbXBsZS10b2tlbg=="
    assert authorization("example-token", unencoded=True) == "Token example-token"
