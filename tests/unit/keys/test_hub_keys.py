"""The hub keyring: where the secret comes from, derivation per purpose, rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.hubkeys import generate_secret, hub_key_env, load_hub_keyring
from settlement.keys import HubKey, HubKeyInvalid, Purpose


def _settings(home: Path, **env: str) -> Settings:
    return Settings.from_env({"ROAMCLEAR_HOME": str(home), **env})


def test_a_missing_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    first = load_hub_keyring(_settings(tmp_path))
    path = tmp_path / "hub.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_hub_keyring(_settings(tmp_path)).current == first.current


def test_the_environment_wins_and_previous_keys_still_verify(tmp_path: Path) -> None:
    new, old = generate_secret(), generate_secret()
    keyring = load_hub_keyring(
        _settings(tmp_path, ROAMCLEAR_HUB_KEY=new, ROAMCLEAR_HUB_KEYS_PREVIOUS=old)
    )
    assert not (tmp_path / "hub.key").exists()
    assert keyring.find(keyring.previous[0].key_id) == keyring.previous[0]
    assert keyring.find("hub-000000000000") is None
    assert keyring.current.key_id != keyring.previous[0].key_id


def test_a_child_process_gets_the_same_keyring(tmp_path: Path) -> None:
    parent = _settings(tmp_path, ROAMCLEAR_HUB_KEYS_PREVIOUS=generate_secret())
    child = _settings(tmp_path / "elsewhere", **hub_key_env(parent))
    assert load_hub_keyring(child) == load_hub_keyring(parent)


def test_short_or_garbled_secrets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HubKeyInvalid, match="at least 32"):
        load_hub_keyring(_settings(tmp_path, ROAMCLEAR_HUB_KEY="c2hvcnQ"))
    with pytest.raises(HubKeyInvalid, match="ROAMCLEAR_HUB_KEY"):
        load_hub_keyring(_settings(tmp_path, ROAMCLEAR_HUB_KEY="!!!"))


def test_each_purpose_gets_its_own_key() -> None:
    key = HubKey.from_secret(bytes(range(32)))
    assert key.derive(Purpose.RECORD_PROOF) != key.derive(Purpose.STATEMENT_SEAL)
    assert key.secret.hex() not in repr(key)
