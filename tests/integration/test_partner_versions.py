"""A partner's change of role or name is a new version; the old one is kept."""

from __future__ import annotations

import pytest

from schemas.hub.party import PartyRef
from settlement.store import reference_store
from settlement.store.db import connect

pytestmark = pytest.mark.integration


def test_a_changed_partner_gets_a_new_version_and_an_unchanged_one_none(
    fresh_database_url: str,
) -> None:
    party = PartyRef.parse("NL*TNM")
    with connect(fresh_database_url) as conn:
        reference_store.add_partner(conn, party, "CPO", "TNM Charging")
        reference_store.add_partner(conn, party, "CPO", "TNM Charging")  # no change
        reference_store.add_partner(conn, party, "BOTH", "TNM Charging & Mobility")
        versions = conn.execute(
            "SELECT version, role, name FROM partner_version ORDER BY version"
        ).fetchall()
        (current,) = reference_store.list_partners(conn)
    assert [(v["version"], v["role"]) for v in versions] == [(1, "CPO"), (2, "BOTH")]
    assert (current["role"], current["name"]) == ("BOTH", "TNM Charging & Mobility")
