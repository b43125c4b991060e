"""The submitter of a CDR is proven, not claimed: forged charges and reversals, copied and
relabelled signatures, revoked keys and a key rollover, through the real batch against
PostgreSQL and the broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.kafka.client import Signer, produce
from pipeline.topics import Topic, topic_name
from schemas.hub.party import PartyRef
from settlement.store import books, partner_keys
from settlement.store.clearing_store import SubmittedRecord
from settlement.store.db import connect
from tests.integration.clearing.helpers import (
    cdr_dict,
    credit_of,
    envelope,
    partner_signer,
    register_reference_data,
    topic_records,
)
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration


def _key(settings: Settings, party: str) -> tuple[str, Ed25519PrivateKey]:
    assert settings.database_url
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with connect(settings.database_url) as conn:
        key_id = partner_keys.add_key(conn, PartyRef.parse(party), raw, "test")
        conn.commit()
    return key_id, private


def _outcomes(settings: Settings) -> list[tuple[str, str | None, str | None, str | None]]:
    """(outcome or reason, proof, submitter, cdr key) per archived record, in offset order."""
    assert settings.database_url
    with connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT coalesce(r.reason_code, o.outcome) AS what, o.proof, r.submitter, r.cdr_key "
            "FROM cdr_outcome o JOIN raw_event e USING (archive_id) "
            "LEFT JOIN rejection r USING (rejection_id) ORDER BY e.archive_id"
        ).fetchall()
    return [(r["what"], r["proof"], r["submitter"], r["cdr_key"]) for r in rows]


def _balances(settings: Settings) -> dict[str, Decimal]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        return {b["account"]: b["balance"] for b in books.balances(conn)}


def _clear_records(settings: Settings, records: list[SubmittedRecord]) -> Counter[str]:
    return asyncio.run(_clear(settings, records)).outcomes


def _send(settings: Settings, *groups: tuple[list[bytes], Signer]) -> list[SubmittedRecord]:
    """Produce each group of values with its signer, all under one key (one partition, so in
    order); the records the topic now holds, oldest first."""
    assert settings.kafka_bootstrap_servers
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    for values, sign in groups:
        records = [(b"k", value) for value in values]
        asyncio.run(produce(settings.kafka_bootstrap_servers, topic, records, sign))
    return topic_records(settings)


def _unsigned(topic: str, value: bytes) -> list[tuple[str, bytes]]:
    return []


def test_a_forged_charge_and_a_forged_reversal_are_rejected(fresh_settings: Settings) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    genuine = _send(settings, ([envelope(cdr_dict(0))], hub_signer(settings)))
    assert _clear_records(settings, genuine) == Counter({"booked": 1})
    after_genuine = _balances(settings)

    # a bare Kafka client, no key: a new charge in NL*TNM's name, and a credit reversing
    # NL*TNM's genuine charge (which would erase DE*EMP's debt)
    forged = _send(settings, ([envelope(cdr_dict(1)), envelope(credit_of(0))], _unsigned))
    assert _clear_records(settings, forged[1:]) == Counter({"rejected": 2})

    assert _balances(settings) == after_genuine
    hub_key = _outcomes(settings)[0][1]
    assert hub_key is not None and hub_key.startswith("hub-")
    assert _outcomes(settings) == [
        ("LEDGERED", hub_key, None, None),
        ("unauthenticated_submitter", None, None, "NL*TNM*CDR-2026-0002"),
        ("unauthenticated_submitter", None, None, "NL*TNM*CDR-2026-0001-CR"),
    ]
    with connect(settings.database_url or "") as conn:
        rejected = books.rejections(conn, reason="unauthenticated_submitter")
    assert all("no proof of its submitter" in r["message"] for r in rejected)
    assert all(r["stage"] == "authenticate" for r in rejected)


def test_partner_signatures_prove_only_their_own_party(fresh_settings: Settings) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    tnm_key, tnm = _key(settings, "NL*TNM")
    emp_key, emp = _key(settings, "DE*EMP")
    tnm_sign, emp_sign = partner_signer(tnm_key, tnm), partner_signer(emp_key, emp)
    first = _send(settings, ([envelope(cdr_dict(0))], tnm_sign))
    genuine = first[0]

    def copied_signature(topic: str, value: bytes) -> list[tuple[str, bytes]]:
        return [(name, value or b"") for name, value in genuine.headers]

    records = _send(
        settings,
        # another party copies NL*TNM's signature onto a record of its own making
        ([envelope(credit_of(0))], copied_signature),
        (
            [
                envelope(credit_of(0)),  # DE*EMP's key, claiming NL*TNM
                envelope(cdr_dict(1), submitter="DE*EMP"),  # DE*EMP, a CDR of NL*TNM
                genuine.value or b"",  # NL*TNM's own record, relabelled as DE*EMP's
            ],
            emp_sign,
        ),
        ([genuine.value or b""], tnm_sign),  # NL*TNM's record replayed byte for byte
    )
    assert len(records) == 6

    outcomes = _clear_records(settings, records)

    assert outcomes == Counter({"booked": 1, "rejected": 4, "duplicate": 1})
    decided = {(what, proof, submitter) for what, proof, submitter, _ in _outcomes(settings)}
    assert decided == {
        ("LEDGERED", tnm_key, None),
        ("unauthenticated_submitter", None, None),  # copied, claimed, relabelled
        ("not_owner", emp_key, "DE*EMP"),
        ("DUPLICATE", tnm_key, None),
    }
    with connect(settings.database_url or "") as conn:
        messages = sorted(r["message"] for r in books.rejections(conn))
    assert any("does not match this record" in m for m in messages)
    assert any(
        f"signed with key {emp_key} of DE*EMP but its envelope claims submitter NL*TNM" in m
        for m in messages
    )


def test_a_key_rollover_keeps_clearing_and_a_revoked_key_is_refused(
    fresh_settings: Settings,
) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    old_key, old = _key(settings, "NL*TNM")
    new_key, new = _key(settings, "NL*TNM")
    old_sign, new_sign = partner_signer(old_key, old), partner_signer(new_key, new)
    during = _send(
        settings, ([envelope(cdr_dict(0))], old_sign), ([envelope(cdr_dict(1))], new_sign)
    )
    assert _clear_records(settings, during) == Counter({"booked": 2})

    with connect(settings.database_url or "") as conn:
        partner_keys.revoke_key(conn, old_key, reason="rolled over")
        conn.commit()
    after = _send(
        settings, ([envelope(cdr_dict(2))], old_sign), ([envelope(credit_of(0))], new_sign)
    )
    assert _clear_records(settings, after[2:]) == Counter({"booked": 1, "rejected": 1})
    reasons = [what for what, *_ in _outcomes(settings)]
    assert reasons.count("unauthenticated_submitter") == 1
    with connect(settings.database_url or "") as conn:
        (message,) = [r["message"] for r in books.rejections(conn)]
        listed = {k.key_id: k for k in partner_keys.list_keys(conn, PartyRef.parse("NL*TNM"))}
    assert f"key {old_key} of NL*TNM was revoked at" in message
    assert listed[old_key].revoked_at is not None and listed[new_key].revoked_at is None
    assert listed[old_key].revocation_reason == "rolled over"


def test_a_revocation_can_take_effect_later(fresh_settings: Settings) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    key_id, private = _key(settings, "NL*TNM")
    with connect(settings.database_url or "") as conn:
        partner_keys.revoke_key(conn, key_id, datetime.now(UTC) + timedelta(hours=1))
        conn.commit()
    records = _send(settings, ([envelope(cdr_dict(0))], partner_signer(key_id, private)))
    assert _clear_records(settings, records) == Counter({"booked": 1})


def test_keys_belong_to_registered_partners_and_are_never_changed(
    fresh_settings: Settings,
) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    key_id, _ = _key(settings, "NL*TNM")
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with connect(settings.database_url or "") as conn:
        with pytest.raises(partner_keys.PartnerKeyError, match="not a registered partner"):
            partner_keys.add_key(conn, PartyRef.parse("FR*NOP"), raw)
        with pytest.raises(partner_keys.PartnerKeyError, match="32 bytes"):
            partner_keys.add_key(conn, PartyRef.parse("NL*TNM"), raw[:31])
        partner_keys.revoke_key(conn, key_id)
        with pytest.raises(partner_keys.PartnerKeyError, match="revoked already"):
            partner_keys.revoke_key(conn, key_id)
        conn.commit()
        for statement in (
            "UPDATE partner_key SET partner = 'DE*EMP'",
            "DELETE FROM partner_key_revocation",
            "TRUNCATE partner_key CASCADE",
        ):
            with pytest.raises(Exception, match="append-only"), conn.transaction():
                conn.execute(statement)
