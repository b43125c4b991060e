"""JSON Schemas: deterministic, complete, and committed up to date."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.export import (
    DEFAULT_DIRECTORY,
    SCHEMA_MODELS,
    export_json_schemas,
    stale_json_schemas,
)


def test_committed_schemas_match_the_models() -> None:
    stale = stale_json_schemas(DEFAULT_DIRECTORY)
    assert stale == [], f"run `roamclear schemas export`; stale: {stale}"


def test_export_is_deterministic_and_detects_drift(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    assert len(written) == len(SCHEMA_MODELS)
    first = {path.name: path.read_bytes() for path in written}
    export_json_schemas(tmp_path)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == first
    assert all(content.endswith(b"}\n") for content in first.values())
    assert stale_json_schemas(tmp_path) == []

    (tmp_path / "ocpi.cdr.schema.json").write_text("{}\n")
    (tmp_path / "old.schema.json").write_text("{}\n")
    (tmp_path / "ocpi.tariff.schema.json").unlink()
    assert stale_json_schemas(tmp_path) == [
        "ocpi.cdr.schema.json",
        "ocpi.tariff.schema.json",
        "old.schema.json",
    ]


def test_cdr_schema_names_the_spec_fields() -> None:
    schema = json.loads((DEFAULT_DIRECTORY / "ocpi.cdr.schema.json").read_text())
    assert {"cdr_token", "cdr_location", "charging_periods", "total_cost"} <= set(
        schema["required"]
    )
    assert schema["properties"]["charging_periods"]["minItems"] == 1
