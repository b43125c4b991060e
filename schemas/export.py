"""JSON Schemas of every contract, generated from the models into schemas/json/.

The files are committed so partners and other languages can read the contracts; a test
fails when they drift from the models (`stale_json_schemas`). Output is deterministic:
sorted keys, two-space indent, UTF-8, a newline at the end.

    python -c "from pathlib import Path; from schemas.export import export_json_schemas; \\
               export_json_schemas(Path('schemas/json'))"      # or: roamclear schemas export
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import BaseModel

from schemas import events
from schemas.hub.agreement import Agreement
from schemas.hub.batch import SettlementBatch
from schemas.hub.ledger import Posting, Transaction
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.credentials import Credentials
from schemas.ocpi.location import Location
from schemas.ocpi.session import Session
from schemas.ocpi.tariff import Tariff
from schemas.ocpi.token import Token
from schemas.ocpi.v211 import CdrV211, TariffV211
from schemas.validation import Violation

SUFFIX: Final = ".schema.json"
DEFAULT_DIRECTORY: Final = Path(__file__).resolve().parent / "json"

# File stem -> model. Envelopes are named after their event type.
SCHEMA_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "ocpi.cdr": Cdr,
    "ocpi.tariff": Tariff,
    "ocpi.session": Session,
    "ocpi.location": Location,
    "ocpi.token": Token,
    "ocpi.credentials": Credentials,
    "ocpi211.cdr": CdrV211,
    "ocpi211.tariff": TariffV211,
    "hub.party_ref": PartyRef,
    "hub.cdr_key": CdrKey,
    "hub.agreement": Agreement,
    "hub.posting": Posting,
    "hub.transaction": Transaction,
    "hub.settlement_batch": SettlementBatch,
    "hub.violation": Violation,
    "hub.rejection": events.Rejection,
    **{f"event.{kind.value}": model for kind, model in events.ENVELOPES.items()},
}


def render_schema(model: type[BaseModel]) -> str:
    """The model's JSON Schema (validation mode: what a producer may send), as file text."""
    schema = model.model_json_schema(mode="validation")
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content, for every model in SCHEMA_MODELS."""
    return {f"{stem}{SUFFIX}": render_schema(model) for stem, model in SCHEMA_MODELS.items()}


def export_json_schemas(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    """Write every schema into `directory` and remove stale `*.schema.json` files there."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for path in directory.glob(f"*{SUFFIX}"):
        if path.name not in expected:
            path.unlink()
    written = []
    for name, content in sorted(expected.items()):
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale_json_schemas(directory: Path = DEFAULT_DIRECTORY) -> list[str]:
    """Names of schema files that differ from the models, are missing, or are extra."""
    expected = expected_files()
    present = {path.name for path in directory.glob(f"*{SUFFIX}")} if directory.is_dir() else set()
    stale = [name for name in sorted(present - expected.keys())]
    for name, content in sorted(expected.items()):
        path = directory / name
        if name not in present or path.read_text(encoding="utf-8") != content:
            stale.append(name)
    return sorted(stale)
