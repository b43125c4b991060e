"""deploy/'s files read as data: the compose file, the Kubernetes manifests, the Dockerfile's
instructions, the env example, the runbook's commands; and what roamclear itself accepts (its
command tree, the variables `Settings.from_env` reads), so tests can hold one to the other.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import typer
import yaml

from pipeline.config import Settings

try:  # typer 0.2x carries its own copy of click; what the CLI raises comes from there
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - typer on the public click
    from click import UsageError  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
IMAGE_LOCAL = "roamclear:local"  # the compose file's tag for the image it builds
IMAGE_K8S = "roamclear"  # the manifests' image name (kustomize's `images` sets the tag)
SERVER_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")  # unset: the embedded stack


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def roamclear_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the roamclear image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == IMAGE_LOCAL
    }


def manifest_paths() -> list[Path]:
    return sorted(path for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml")


@cache
def manifests() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every Kubernetes object in deploy/k8s (kustomizations aside), with its file."""
    return tuple(
        (path, document)
        for path in manifest_paths()
        for document in yaml.safe_load_all(path.read_text())
        if document
    )


def pod_spec(document: Mapping[str, Any]) -> dict[str, Any] | None:
    if document["kind"] not in ("Deployment", "Job"):
        return None
    spec: dict[str, Any] = document["spec"]["template"]["spec"]
    return spec


def roamclear_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    """(object name/container name, container) for every container of the roamclear image."""
    for _, document in manifests():
        spec = pod_spec(document)
        if spec is None:
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["image"] == IMAGE_K8S:
                yield f"{document['metadata']['name']}/{container['name']}", container


def config_map_data() -> dict[str, str]:
    (data,) = [doc["data"] for _, doc in manifests() if doc["kind"] == "ConfigMap"]
    return dict(data)


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # FROM, RUN, COPY, … in upper case
    arguments: str  # the rest, continuation lines joined
    stage: str  # the `FROM … AS name` it belongs to

    def exec_form(self) -> list[str]:
        """A JSON-array argument (`CMD ["api", …]`), parsed."""
        words: list[str] = json.loads(self.arguments)
        return words


@cache
def dockerfile() -> tuple[Instruction, ...]:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions: list[Instruction] = []
    stage = ""
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = arguments.split(" AS ")[-1].strip() if " AS " in arguments else arguments
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    return tuple(instructions)


def env_example() -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {name: value for name, value in pairs}


# `docker run --rm roamclear:TAG …`, `compose … run --rm [--no-deps] cli …`,
# `compose … exec SERVICE roamclear …` and `kubectl … exec … -- roamclear …` start
# roamclear's own commands in the runbook
_RUNBOOK_PREFIXES = (("--rm", re.compile(r"roamclear:[\w.-]+")), ("--", re.compile("roamclear")))
_SHELL_BREAKS = re.compile(r"\s(?:\||&&|;|>|2>|#)\s")


def runbook_invocations() -> list[list[str]]:
    """The roamclear argument lists the runbook's shell blocks run."""
    text = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|shell|bash)\n(.*?)```", text, flags=re.DOTALL)
    invocations: list[list[str]] = []
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    lines += [inner for line in lines for inner in re.findall(r"\$\(([^()]*)\)", line)]
    for line in lines:
        words = shlex.split(_SHELL_BREAKS.split(f" {line} ")[0], comments=True)
        for index, word in enumerate(words[1:], start=1):
            before = words[index - 1]
            is_cli = word == "cli" and before in ("--rm", "--no-deps")
            is_exec = word == "roamclear" and index >= 2 and words[index - 2] == "exec"
            prefixed = any(before == b and p.fullmatch(word) for b, p in _RUNBOOK_PREFIXES)
            if is_cli or is_exec or prefixed:
                invocations.append(words[index + 1 :])
                break
    return invocations


def check_invocation(argv: list[str]) -> None:
    """Parse `roamclear <argv>` with the real command tree, running nothing; raises UsageError
    (unknown command or option, a bad value) the way the command line would."""
    from pipeline.cli.main import app

    command: Any = typer.main.get_command(app)
    rest = list(argv)
    path = ["roamclear"]
    while hasattr(command, "list_commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            raise UsageError(f"{' '.join(path)} has no command {name!r}")
        path.append(name)
        command = sub
    if hasattr(command, "list_commands") and not rest:
        raise UsageError(f"{' '.join(path)} needs a subcommand")
    try:
        command.make_context(" ".join(path), rest)
    except typer.Exit as exit_:  # --help prints and exits 0
        if exit_.exit_code != 0:
            raise


class _ReadRecorder(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        self.names.add(str(name))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@cache
def settings_variables() -> frozenset[str]:
    """Every environment variable `Settings.from_env` reads (what it looks up, not what a
    text search of config.py would guess)."""
    environ = _ReadRecorder()
    Settings.from_env(environ)
    return frozenset(environ.names)
