"""A partner producing straight to Kafka, as docs/ocpi.md tells it to: a key from
`roamclear partners keys create`, the runnable example docs/examples/produce_signed_cdr.py,
and the CDR booked in its name; after `keys revoke` the old key is refused, and a key the
partner made itself (`keys add`) takes over."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from pipeline.config import Settings
from pipeline.hubkeys import hub_key_env
from pipeline.topics import Topic, topic_name
from schemas.wire import encode_json
from settlement.store.db import connect
from tests.e2e.cli import ROOT, roamclear
from tests.integration.clearing.helpers import cdr_dict, register_reference_data, topic_records
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.e2e
EXAMPLE = ROOT / "docs" / "examples" / "produce_signed_cdr.py"


def _env(settings: Settings) -> dict[str, str]:
    assert settings.kafka_bootstrap_servers and settings.database_url
    return {
        **os.environ,
        **hub_key_env(settings),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "ROAMCLEAR_TOPIC_PREFIX": settings.topic_prefix,
        "ROAMCLEAR_HOME": str(settings.home),
    }


def _example(settings: Settings, key_id: str, pem: Path, cdr: Path) -> None:
    assert settings.kafka_bootstrap_servers
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--bootstrap",
            settings.kafka_bootstrap_servers,
            "--topic",
            topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED),
            "--key-id",
            key_id,
            "--private-key",
            str(pem),
            "--submitter",
            "NL*TNM",
            str(cdr),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _clear_topic(settings: Settings) -> Counter[str]:
    """Clears every record in the topic (those archived before are skipped)."""
    return asyncio.run(_clear(settings, topic_records(settings))).outcomes


def test_a_partner_signs_with_the_example_and_a_revoked_key_is_refused(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings
    register_reference_data(settings)
    env = _env(settings)
    pem = tmp_path / "tnm.pem"
    created = roamclear(env, "partners", "keys", "create", "--partner", "NL*TNM", "--out", str(pem))
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split()[-1]
    assert key_id.startswith("pk-") and oct(pem.stat().st_mode)[-3:] == "600"
    for index in (0, 1):
        (tmp_path / f"cdr{index}.json").write_text(encode_json(cdr_dict(index)))

    _example(settings, key_id, pem, tmp_path / "cdr0.json")
    assert _clear_topic(settings) == Counter({"booked": 1})
    with connect(settings.database_url or "") as conn:
        (proof,) = [r["proof"] for r in conn.execute("SELECT proof FROM cdr_outcome")]
    assert proof == key_id

    revoked = roamclear(env, "partners", "keys", "revoke", key_id, "--reason", "test")
    assert revoked.returncode == 0, revoked.stderr
    listed = roamclear(env, "partners", "keys", "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert (
        entry["key_id"] == key_id and entry["revoked_at"] and entry["revocation_reason"] == "test"
    )

    _example(settings, key_id, pem, tmp_path / "cdr1.json")
    assert _clear_topic(settings) == Counter({"rejected": 1})

    # the partner makes its own pair and sends only the public key
    new_pem, public = tmp_path / "new.pem", tmp_path / "new.pub.pem"
    private = Ed25519PrivateKey.generate()
    new_pem.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(
        private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    added = roamclear(
        env, "partners", "keys", "add", "--partner", "NL*TNM", "--public-key", str(public)
    )
    assert added.returncode == 0, added.stderr
    _example(settings, added.stdout.split()[-1], new_pem, tmp_path / "cdr1.json")
    assert _clear_topic(settings) == Counter({"booked": 1})
    refused = roamclear(env, "partners", "keys", "create", "--partner", "FR*NOP", "--out", str(pem))
    assert refused.returncode == 2 and "exists" in refused.stderr
