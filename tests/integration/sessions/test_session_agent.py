"""The session agent's store against the real broker and PostgreSQL: every version kept, the
current state per session, idempotent under redelivery, and nothing unproven or foreign
stored as a session (it is rejected and kept)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipeline.config import Settings
from schemas.hub.party import PartyRef
from settlement.store import partner_keys, reference_store
from settlement.store.db import Row, connect
from tests.integration.clearing.helpers import partner_signer
from tests.integration.ocpi.sessions import period, session_doc
from tests.integration.sessions.helpers import (
    key_of,
    produce_sessions,
    read_sessions,
    session_event,
    store,
)

pytestmark = pytest.mark.integration


def _rows(settings: Settings, query: str) -> list[Row]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        return conn.execute(query).fetchall()


def _lifecycle() -> list[tuple[bytes, bytes]]:
    pending = session_doc()
    active = session_doc(
        status="ACTIVE",
        kwh=Decimal("1.5"),
        charging_periods=[period("2026-03-04T10:00:00Z", "1.5")],
        last_updated="2026-03-04T10:15:00Z",
    )
    completed = session_doc(
        status="COMPLETED",
        kwh=Decimal("3.25"),
        end_date_time="2026-03-04T11:00:00Z",
        charging_periods=[
            period("2026-03-04T10:00:00Z", "1.5"),
            period("2026-03-04T10:30:00Z", "1.75"),
        ],
        last_updated="2026-03-04T11:00:00Z",
    )
    return [
        (key_of(pending), session_event(pending, "2026-03-04T10:00:01Z")),
        (key_of(active), session_event(active, "2026-03-04T10:15:01Z")),
        (key_of(completed), session_event(completed, "2026-03-04T11:00:01Z")),
    ]


def test_every_version_is_kept_and_the_newest_is_current(fresh_settings: Settings) -> None:
    records = produce_sessions(fresh_settings, _lifecycle())
    result = store(fresh_settings, records)
    assert (result.versions, result.skipped, result.duplicates, result.rejected) == (3, 0, 0, {})
    versions = _rows(fresh_settings, "SELECT status FROM session_version ORDER BY occurred_at")
    assert [v["status"] for v in versions] == ["PENDING", "ACTIVE", "COMPLETED"]
    (current,) = _rows(fresh_settings, "SELECT * FROM session")
    assert current["session_key"] == "NL*TNM*SES-1" and current["status"] == "COMPLETED"
    assert (current["cpo"], current["emsp"], current["versions"]) == ("NL*TNM", "DE*EMP", 3)
    assert current["kwh"] == Decimal("3.25") and len(current["body"]["charging_periods"]) == 2
    # unknown fields and exact numbers survive
    assert current["body"]["x_vendor"]["ratio"] == Decimal("0.10000000000000000001")


def test_redelivery_and_a_record_produced_twice_change_nothing(fresh_settings: Settings) -> None:
    raw = _lifecycle()
    records = produce_sessions(fresh_settings, raw)
    store(fresh_settings, records)
    again = store(fresh_settings, records)  # a crash before the ack: the same records again
    assert (again.skipped, again.versions) == (3, 0)
    twice = produce_sessions(fresh_settings, [raw[2]])  # the producer sent it once more
    assert store(fresh_settings, twice).duplicates == 1
    assert _rows(fresh_settings, "SELECT count(*) AS n FROM session_version")[0]["n"] == 3
    assert _rows(fresh_settings, "SELECT count(*) AS n FROM rejection")[0]["n"] == 0


def test_the_order_the_hub_accepted_decides_the_current_state(fresh_settings: Settings) -> None:
    raw = _lifecycle()
    records = produce_sessions(fresh_settings, [raw[2], raw[0]])  # delivered out of order
    store(fresh_settings, records)
    (current,) = _rows(fresh_settings, "SELECT status, versions FROM session")
    assert (current["status"], current["versions"]) == ("COMPLETED", 2)


def test_unproven_foreign_and_invalid_events_are_rejected_and_kept(
    fresh_settings: Settings,
) -> None:
    settings = fresh_settings
    assert settings.database_url
    private = Ed25519PrivateKey.generate()
    with connect(settings.database_url) as conn:
        for party in ("NL*TNM", "NL*ABC"):
            reference_store.add_partner(conn, PartyRef.parse(party), "CPO", party)
        abc_key = partner_keys.add_key(
            conn,
            PartyRef.parse("NL*ABC"),
            private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )
        conn.commit()
    tnm = session_doc()
    produce_sessions(settings, [(key_of(tnm), session_event(tnm))], sign=False)
    produce_sessions(
        settings,
        [
            (key_of(tnm), session_event(tnm, submitter="NL*ABC")),  # hub-vouched ABC, TNM's session
            (key_of(tnm), session_event(tnm, event_type="cdr.submitted")),
            (key_of(tnm), session_event(session_doc(status="RESERVED"))),
            (b"x", b'{"event_id": '),
        ],
    )
    produce_sessions(
        settings, [(key_of(tnm), session_event(tnm))], sign=partner_signer(abc_key, private)
    )  # ABC's own key, claiming to be TNM
    own = session_doc(party_id="ABC", id="ABC-1")
    produce_sessions(
        settings,
        [(key_of(own), session_event(own, submitter="NL*ABC"))],
        sign=partner_signer(abc_key, private),
    )  # ABC's own session, signed with its own key: accepted
    result = store(settings, read_sessions(settings))
    assert result.versions == 1
    assert Counter(result.rejected) == Counter(
        {
            "unauthenticated_submitter": 2,
            "not_owner": 1,
            "wrong_event_type": 1,
            "schema_invalid": 1,
            "malformed_json": 1,
        }
    )
    kept = _rows(
        settings,
        "SELECT r.reason_code, r.violations, e.topic FROM rejection r JOIN raw_event e "
        "USING (archive_id) ORDER BY r.rejection_id",
    )
    assert {row["topic"] for row in kept} == {f"{settings.topic_prefix}.session.events"}
    invalid = next(row for row in kept if row["reason_code"] == "schema_invalid")
    assert invalid["violations"][0]["path"] == "session.status"
    (current,) = _rows(settings, "SELECT session_key, proof FROM session")
    assert current["session_key"] == "NL*ABC*ABC-1" and current["proof"] == abc_key
