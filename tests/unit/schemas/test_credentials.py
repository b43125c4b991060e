"""The OCPI 2.2.1 Credentials object, strictly: every violation at once, with its path."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.ocpi.credentials import Credentials, Role, VersionDetails
from schemas.validation import SchemaInvalid, parse_model


def credentials(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "token": "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
        "url": "https://example.com/ocpi/versions",
        "roles": [
            {
                "role": "CPO",
                "party_id": "EXA",
                "country_code": "NL",
                "business_details": {"name": "Example Operator"},
            }
        ],
    }
    value.update(changes)
    return value


def _violations(value: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SchemaInvalid) as raised:
        parse_model(Credentials, value)
    return {v.path: v.rule for v in raised.value.violations}


def test_a_minimal_cpo_and_one_with_full_business_details() -> None:
    assert parse_model(Credentials, credentials()).roles[0].role is Role.CPO
    full = credentials()
    full["roles"][0]["business_details"] |= {
        "website": "http://example.com",
        "logo": {
            "url": "https://example.com/img/logo.jpg",
            "thumbnail": "https://example.com/img/logo_thumb.jpg",
            "category": "OPERATOR",
            "type": "jpeg",
            "width": 512,
            "height": 512,
        },
    }
    parsed = parse_model(Credentials, full)
    assert parsed.roles[0].business_details.logo is not None


def test_unknown_fields_are_kept() -> None:
    parsed = parse_model(Credentials, credentials(vendor_note="kept"))
    assert parsed.model_dump()["vendor_note"] == "kept"


def test_every_violation_is_reported_with_its_path() -> None:
    found = _violations(
        {
            "token": "has a space",
            "url": "ftp://example.com/versions",
            "roles": [
                {"role": "CPO", "party_id": "EXAM", "country_code": "NLD", "business_details": {}},
                {"role": "DRIVER", "party_id": "EXA", "country_code": "NL"},
            ],
        }
    )
    assert found == {
        "token": "must be printable ASCII without whitespace (U+0021 to U+007E)",
        "url": "must be an absolute http or https URL",
        "roles[0].party_id": "must be 3 letters or digits",
        # schemas.types names one rule per pattern, and the country and language patterns
        # are the same text: the sentence is the language's
        "roles[0].country_code": "must be 2 letters (ISO 639-1)",
        "roles[0].business_details.name": "field required",
        "roles[1].role": "must be one of: CPO, EMSP, HUB, NAP, NSP, OTHER, SCSP",
        "roles[1].business_details": "field required",
    }


@pytest.mark.parametrize(
    ("change", "path", "rule"),
    [
        ({"token": "x" * 65}, "token", "at most 64 characters"),
        ({"token": ""}, "token", "at least 1 characters"),
        ({"token": "tab\there"}, "token", "must be printable ASCII without whitespace"),
        ({"token": "caf\u00e9"}, "token", "must be printable ASCII without whitespace"),
        ({"url": "/ocpi/versions"}, "url", "must be an absolute http or https URL"),
        ({"url": "https://" + "a" * 250}, "url", "at most 255 characters"),
        ({"roles": []}, "roles", "must have at least one element"),
    ],
)
def test_the_spec_s_limits(change: dict[str, Any], path: str, rule: str) -> None:
    assert _violations(credentials(**change))[path].startswith(rule)


def test_a_role_party_pair_appears_once() -> None:
    role = credentials()["roles"][0]
    lower = role | {"party_id": "exa", "country_code": "nl"}  # CiStrings: the same party
    found = _violations(credentials(roles=[role, lower]))
    assert found == {
        "roles[1]": "CPO NL*EXA is listed twice (each role, party_id and country_code once)"
    }
    emsp = role | {"role": "EMSP"}
    assert len(parse_model(Credentials, credentials(roles=[role, emsp])).roles) == 2


def test_version_details_keep_unknown_modules_and_refuse_unknown_roles() -> None:
    details = parse_model(
        VersionDetails,
        {
            "version": "2.2.1",
            "endpoints": [
                {"identifier": "nltnm-tokens", "role": "SENDER", "url": "https://x.example/t"}
            ],
        },
    )
    assert details.endpoints[0].identifier == "nltnm-tokens"
    with pytest.raises(SchemaInvalid, match="1 violation"):
        parse_model(
            VersionDetails,
            {
                "version": "2.2.1",
                "endpoints": [{"identifier": "cdrs", "role": "BOTH", "url": "https://x.example/c"}],
            },
        )
