"""deploy/Dockerfile builds what `make setup` installs, from the same source (pyproject.toml),
and runs it the way the compose file and the manifests expect."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

from tests.unit.deploy.deployfiles import (
    ROOT,
    Instruction,
    compose,
    dockerfile,
    roamclear_containers,
)

# the image's user and where roamclear keeps its files (pid files, the embedded data it never
# starts here): the manifests mount a writable volume there and run as that user
RUNTIME_USER = "10001:10001"
RUNTIME_HOME = "/var/lib/roamclear"


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _makefile_install() -> tuple[str, set[str]]:
    """`make setup`'s install: the Python it needs and the extras it installs."""
    makefile = (ROOT / "Makefile").read_text()
    (python,) = re.findall(r"^PYTHON \?= (python[\d.]+)$", makefile, flags=re.MULTILINE)
    (extras,) = re.findall(r"pip install --quiet -e '\.\[([\w,]+)\]'", makefile)
    assert "pip install --quiet --upgrade pip" in makefile
    return python, set(extras.split(","))


def _stage(name: str) -> list[Instruction]:
    return [i for i in dockerfile() if i.stage == name]


def _pip_commands(stage: str) -> list[list[str]]:
    """Each `python -m pip …` of a stage's RUN instructions, as argument lists."""
    commands = []
    for instruction in _stage(stage):
        if instruction.keyword != "RUN":
            continue
        for part in instruction.arguments.split("&&"):
            words = shlex.split(part)
            if "pip" in words:
                commands.append(words[words.index("pip") + 1 :])
    return commands


def _requirement_extras(requirement: str) -> set[str]:
    match = re.fullmatch(r"([\w.-]+)(?:\[([\w,]+)\])?", requirement)
    assert match, requirement
    return set(match.group(2).split(",")) if match.group(2) else set()


def test_the_image_uses_the_python_make_setup_uses() -> None:
    python, _ = _makefile_install()
    (argument,) = [i.arguments for i in dockerfile() if i.keyword == "ARG"]
    version = python.removeprefix("python")
    assert re.fullmatch(rf"PYTHON_IMAGE=python:{re.escape(version)}-slim(-\w+)?", argument)
    assert _pyproject()["project"]["requires-python"] == f">={version}"
    froms = [i.arguments for i in dockerfile() if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_the_builder_copies_everything_the_build_reads() -> None:
    copied = {
        source
        for instruction in _stage("builder")
        if instruction.keyword == "COPY"
        for source in instruction.arguments.split()[:-1]
    }
    project = _pyproject()
    found = project["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in found["include"]}
    assert copied == {"pyproject.toml", project["project"]["readme"], *packages}
    # the build context keeps only those (a venv or embedded data would be sent to the daemon)
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
    assert "**" in ignore and kept == copied


def test_the_wheel_is_built_as_make_setup_installs_and_installed_offline() -> None:
    _, setup_extras = _makefile_install()
    extras_declared = set(_pyproject()["project"]["optional-dependencies"])
    assert setup_extras <= extras_declared
    builder = _pip_commands("builder")
    assert builder[0] == ["install", "--upgrade", "pip"]  # `make setup`'s first step
    (build,) = builder[1:]
    assert build[:3] == ["wheel", "--wheel-dir", "/wheels"]
    (source,) = build[3:]
    assert source.startswith(".")  # the project itself: pyproject.toml's dependencies
    image_extras = _requirement_extras(source.replace(".", "roamclear", 1))
    # what the image leaves out (embedded servers, test and dev tools) is a choice among the
    # extras `make setup` installs, never something else
    assert image_extras <= setup_extras
    (install,) = _pip_commands("runtime")
    assert install[:4] == ["install", "--no-index", "--find-links", "/wheels"]
    (requirement,) = install[4:]
    assert _requirement_extras(requirement) == image_extras


def test_the_runtime_stage_has_no_compiler_and_no_root() -> None:
    runtime = " ".join(i.arguments for i in _stage("runtime") if i.keyword == "RUN")
    assert "apt-get" not in runtime and "gcc" not in runtime and "build-essential" not in runtime
    (user,) = [i.arguments for i in _stage("runtime") if i.keyword == "USER"]
    assert user == RUNTIME_USER
    env = " ".join(i.arguments for i in _stage("runtime") if i.keyword == "ENV")
    assert f"ROAMCLEAR_HOME={RUNTIME_HOME}" in env
    for name, container in roamclear_containers():
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert RUNTIME_HOME in mounts, name  # the root file system is read-only there


def test_the_healthcheck_asks_the_api_on_the_port_it_serves() -> None:
    (healthcheck,) = [i.arguments for i in dockerfile() if i.keyword == "HEALTHCHECK"]
    (port,) = re.findall(r"http://127\.0\.0\.1:(\d+)/health", healthcheck)
    (cmd,) = [i for i in dockerfile() if i.keyword == "CMD"]
    for command in (cmd.exec_form(), compose()["services"]["api"]["command"]):
        assert command[:1] == ["api"] and command[command.index("--port") + 1] == port
    (expose,) = [i.arguments for i in dockerfile() if i.keyword == "EXPOSE"]
    assert expose == port
    assert compose()["services"]["api"]["ports"] == [f"${{API_PORT:-{port}}}:{port}"]
