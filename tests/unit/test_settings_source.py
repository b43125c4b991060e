"""One settings object: no module but pipeline/config.py reads a ROAMCLEAR_ variable (the
source is parsed, not run), every setting names the variable it comes from, and
`roamclear config show` prints them all with the secrets masked."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.config import Settings
from pipeline.effective_config import effective
from settlement.store.urls import MASK
from tests.unit.deploy.deployfiles import settings_variables

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "settlement", "schemas")
CONFIG = Path("pipeline/config.py")
PREFIX = "ROAMCLEAR_"
# calls that read an environment mapping by name (os.environ.get, os.getenv, env.pop, …)
READS = frozenset({"get", "getenv", "pop", "setdefault", "__getitem__"})


def _names(node: ast.AST) -> Iterator[str]:
    """The ROAMCLEAR_ names a node spells: a string, or an f-string's leading text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr) and node.values:
        yield from _names(node.values[0])


def _is_environment(node: ast.AST) -> bool:
    """`os.environ`, or a mapping named env or environ."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id in {"env", "environ"}


def reads_of(source: str) -> list[tuple[int, str]]:
    """(line, variable) for every read of a ROAMCLEAR_ variable in `source`: a subscript
    (`environ["ROAMCLEAR_X"]`), a reading call (`.get("ROAMCLEAR_X")`, `getenv`), or a
    click/typer `envvar=` option."""
    found = []
    for node in ast.walk(ast.parse(source)):
        spelled: list[str] = []
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            spelled += _names(node.slice)
        elif isinstance(node, ast.Call):
            function = node.func
            name = getattr(function, "attr", None) or getattr(function, "id", "")
            if name in READS and node.args:
                spelled += _names(node.args[0])
            elif any(_is_environment(arg) for arg in node.args):  # a helper given both
                spelled += [text for arg in node.args for text in _names(arg)]
            for keyword in node.keywords:
                if keyword.arg == "envvar":
                    spelled += _names(keyword.value)
        found += [(node.lineno, name) for name in spelled if name.startswith(PREFIX)]  # type: ignore[attr-defined]
    return found


def test_no_module_but_config_reads_a_roamclear_variable() -> None:
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative != CONFIG and (reads := reads_of(path.read_text())):
                offenders[str(relative)] = reads
    assert offenders == {}, "read these in Settings (pipeline/config.py) and pass them down"
    # the same scan finds config.py's own reads, so it does see reads when there are some
    assert {name for _, name in reads_of((ROOT / CONFIG).read_text())} >= {
        "ROAMCLEAR_SETTLEMENT_TZ",
        "ROAMCLEAR_EVENT_LOOP",
        "ROAMCLEAR_METRICS_PORT",
    }


def test_the_scan_catches_each_way_of_reading() -> None:
    source = (
        "import os, typer\n"
        'a = os.environ.get("ROAMCLEAR_A", "x")\n'
        'b = os.environ["ROAMCLEAR_B"]\n'
        'c = os.getenv("ROAMCLEAR_C")\n'
        'd = typer.Option(envvar="ROAMCLEAR_D")\n'
        'e = env[f"ROAMCLEAR_DATABASE_URL_{role}"]\n'
        'f = _one_of(env, "ROAMCLEAR_E", ("a", "b"))\n'
        'child = {"ROAMCLEAR_HOME": "/tmp"}  # composing a child\'s environment is no read\n'
        'ok = name.startswith("ROAMCLEAR_DATABASE_URL_")\n'
    )
    assert sorted(reads_of(source)) == [
        (2, "ROAMCLEAR_A"),
        (3, "ROAMCLEAR_B"),
        (4, "ROAMCLEAR_C"),
        (5, "ROAMCLEAR_D"),
        (6, "ROAMCLEAR_DATABASE_URL_"),
        (7, "ROAMCLEAR_E"),
    ]


def test_config_show_names_every_variable_settings_reads() -> None:
    environ = {f"ROAMCLEAR_DATABASE_URL_{r}": "postgresql://r@db/x" for r in ("WORKER", "API")}
    shown = {entry.variable for entry in effective(Settings.from_env(environ))}
    read = settings_variables()
    assert shown - read == set()  # every variable named is one Settings reads
    roles = {name for name in read if name.startswith("ROAMCLEAR_DATABASE_URL_")}
    assert read - roles <= shown  # and every one it reads is shown (role URLs when set)


def test_config_show_masks_the_secrets() -> None:
    hub_key = "aGlkZGVuIGh1YiBrZXksIHRoaXJ0eS10d28gYnl0ZXMh"
    retired = "b2xkIGh1YiBrZXksIHJldGlyZWQgYnV0IHZhbGlkIQ"
    env = {
        "DATABASE_URL": "postgresql://roamclear_admin:admin-pw-1@db:5432/roamclear",
        "ROAMCLEAR_DATABASE_URL_WORKER": "postgresql://roamclear_worker:worker-pw-2@db/roamclear",
        "ROAMCLEAR_HUB_KEY": hub_key,
        "ROAMCLEAR_HUB_KEYS_PREVIOUS": f"{retired},short",
        "ROAMCLEAR_SETTLEMENT_GRACE": "30m",
        "KAFKA_BOOTSTRAP_SERVERS": "",
    }
    result = CliRunner().invoke(app, ["config", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    for secret in ("admin-pw-1", "worker-pw-2", hub_key, retired, "short"):
        assert secret not in result.output
    shown = json.loads(result.stdout)
    assert shown["DATABASE_URL"] == f"postgresql://roamclear_admin:{MASK}@db:5432/roamclear"
    assert shown["ROAMCLEAR_DATABASE_URL_WORKER"] == (
        f"postgresql://roamclear_worker:{MASK}@db/roamclear"
    )
    assert shown["ROAMCLEAR_HUB_KEY"] == shown["ROAMCLEAR_HUB_KEYS_PREVIOUS"] == MASK
    assert shown["ROAMCLEAR_SETTLEMENT_GRACE"] == "1800s"
    assert shown["KAFKA_BOOTSTRAP_SERVERS"] is None  # unset: the embedded broker
    table = CliRunner().invoke(app, ["config", "show"], env={**env, "COLUMNS": "200"})
    assert table.exit_code == 0 and "worker-pw-2" not in table.output
    assert "ROAMCLEAR_SETTLEMENT_TZ" in table.output


def test_config_show_names_a_bad_variable() -> None:
    result = CliRunner().invoke(app, ["config", "show"], env={"ROAMCLEAR_EVENT_LOOP": "trio"})
    assert result.exit_code == 2
    assert "ROAMCLEAR_EVENT_LOOP" in result.output
