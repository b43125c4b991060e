"""Log lines (pipeline.observe.logs): one JSON object per line with the record's position,
the human format by default, and secrets masked whatever logs them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from pipeline.config import Settings
from pipeline.observe.logs import Redactor, configure_logging, record_fields, secrets_of

HUB_KEY = "aHViLWtleS1zZWNyZXQtdGhhdC1tdXN0LW5vdC1sZWFr"
PASSWORD = "pg-Pa55word-never-logged"
ROLE_PASSWORD = "worker-pass-9f8e7d"


def _settings(log_format: str) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": f"postgresql://admin:{PASSWORD}@db.example:5432/hub",
            "ROAMCLEAR_DATABASE_URL_WORKER": (
                f"postgresql://clearing:{ROLE_PASSWORD}@db.example:5432/hub"
            ),
            "ROAMCLEAR_HUB_KEY": HUB_KEY,
            "ROAMCLEAR_LOG_FORMAT": log_format,
        }
    )


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put them back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit(log_format: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    configure_logging(_settings(log_format), "info")
    log = logging.getLogger("roamclear.test")
    log.info(
        "batch cleared from %s, key %s",
        f"postgresql://admin:{PASSWORD}@db.example:5432/hub",
        HUB_KEY,
        extra=record_fields("roamclear.cdr.submitted", 3, 812, b"NL*TNM*CDR-1"),
    )
    log.warning("POST failed, headers {'Authorization': 'Token c2VjcmV0LXRva2VuLTEyMw=='}")
    try:
        raise RuntimeError(f"cannot connect as clearing:{ROLE_PASSWORD}")
    except RuntimeError:
        log.exception("the worker stops")
    logging.getLogger("uvicorn.error").info("uvicorn line password=%s", PASSWORD)
    return capsys.readouterr().err.splitlines()


@pytest.mark.usefixtures("restored_logging")
def test_json_lines_carry_the_record_and_never_a_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = _emit("json", capsys)
    text = "\n".join(lines)
    for secret in (HUB_KEY, PASSWORD, ROLE_PASSWORD, "c2VjcmV0LXRva2VuLTEyMw=="):
        assert secret not in text
    objects = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(objects) == 4, text  # the traceback is inside its line, not lines of its own
    batch, post, stop, server = objects
    assert batch["level"] == "INFO" and batch["logger"] == "roamclear.test"
    assert batch["message"] == (
        "batch cleared from postgresql://admin:***@db.example:5432/hub, key ***"
    )
    assert (batch["topic"], batch["partition"], batch["offset"], batch["key"]) == (
        "roamclear.cdr.submitted",
        3,
        812,
        "NL*TNM*CDR-1",
    )
    assert batch["timestamp"].endswith("Z") and "T" in batch["timestamp"]
    assert "topic" not in post and "Token ***" in post["message"]
    assert (
        stop["level"] == "ERROR"
        and "RuntimeError: cannot connect as clearing:***" in (stop["exception"])
    )
    assert server["logger"] == "uvicorn.error" and server["message"] == "uvicorn line password=***"


@pytest.mark.usefixtures("restored_logging")
def test_the_default_stays_a_human_line(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _emit("text", capsys)
    assert not lines[0].startswith("{")
    assert "[INFO] roamclear.test: batch cleared from postgresql://admin:***@db" in lines[0]
    assert not any(s in "\n".join(lines) for s in (HUB_KEY, PASSWORD, ROLE_PASSWORD))


def test_secrets_of_settings_and_the_patterns_without_them() -> None:
    assert set(secrets_of(_settings("text"))) == {HUB_KEY, PASSWORD, ROLE_PASSWORD}
    plain = Redactor()  # no literal secrets: the patterns alone
    assert plain.redact("kafka://u:p4ss@broker:9092 ok") == "kafka://u:***@broker:9092 ok"
    assert plain.redact("host=db password='a b' user=x") == "host=db password=*** user=x"
    assert plain.redact("Authorization: Bearer abc.def-123") == "Authorization: Bearer ***"
    assert plain.redact("offset 812 of partition 3") == "offset 812 of partition 3"


def test_an_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ROAMCLEAR_LOG_FORMAT: 'yaml' is not one of text, json"):
        Settings.from_env({"ROAMCLEAR_LOG_FORMAT": "yaml"})
