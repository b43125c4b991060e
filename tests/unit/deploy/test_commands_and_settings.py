"""Every roamclear command deploy/ runs exists as written, and every variable it sets is one
that `Settings.from_env` reads (a misspelt variable would be ignored without a word)."""

from __future__ import annotations

import pytest

from tests.unit.deploy.deployfiles import (
    SERVER_VARIABLES,
    UsageError,
    config_map_data,
    dockerfile,
    env_example,
    roamclear_containers,
    roamclear_services,
    runbook_invocations,
    settings_variables,
)
from tests.unit.deploy.deployfiles import (
    check_invocation as check,
)


def _invocations() -> list[tuple[str, list[str]]]:
    found = [(f"compose {name}", s["command"]) for name, s in roamclear_services().items()]
    found += [(f"k8s {name}", container["args"]) for name, container in roamclear_containers()]
    (cmd,) = [i for i in dockerfile() if i.keyword == "CMD"]
    found.append(("Dockerfile CMD", cmd.exec_form()))
    found += [(f"runbook {' '.join(argv)}", argv) for argv in runbook_invocations()]
    return found


@pytest.mark.parametrize(("where", "argv"), _invocations(), ids=[w for w, _ in _invocations()])
def test_each_invocation_parses_with_the_real_command_line(where: str, argv: list[str]) -> None:
    check(argv)


def test_the_runbook_is_read_for_commands() -> None:
    commands = {tuple(argv[:2]) for argv in runbook_invocations()}
    assert ("migrate", "--check") in commands
    assert ("config", "hub-key") in commands


@pytest.mark.parametrize(
    "argv",
    [
        ["settle", "runn"],  # no such subcommand
        ["worker", "--log-level", "info"],  # no such option
        ["topics", "create", "--replication-factor", "0"],  # out of range
        ["settle"],  # a group without its subcommand
    ],
)
def test_a_wrong_invocation_is_refused(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        check(argv)


def test_the_entry_point_is_roamclear_everywhere() -> None:
    (entrypoint,) = [i for i in dockerfile() if i.keyword == "ENTRYPOINT"]
    assert entrypoint.exec_form() == ["roamclear"]
    for name, service in roamclear_services().items():
        assert "entrypoint" not in service, name


def _set_variables() -> list[tuple[str, str]]:
    found = [
        (f"compose {name}", variable)
        for name, service in roamclear_services().items()
        for variable in service["environment"]
    ]
    found += [
        (f"k8s {name}", entry["name"])
        for name, container in roamclear_containers()
        for entry in container.get("env", [])
    ]
    found += [("k8s ConfigMap", variable) for variable in config_map_data()]
    found += [
        ("Dockerfile ENV", assignment.split("=")[0])
        for instruction in dockerfile()
        if instruction.keyword == "ENV" and instruction.stage == "runtime"
        for assignment in instruction.arguments.split()
        if assignment.startswith("ROAMCLEAR_")
    ]
    found += [(".env.example", name) for name in env_example() if name.startswith("ROAMCLEAR_")]
    return found


def test_every_variable_set_is_read_by_settings() -> None:
    unread = [(where, name) for where, name in _set_variables() if name not in settings_variables()]
    assert unread == []


def test_the_reader_sees_what_settings_reads() -> None:
    assert {"ROAMCLEAR_HUB_KEY", "ROAMCLEAR_DATABASE_URL_WORKER", *SERVER_VARIABLES} <= (
        settings_variables()
    )
    assert "ROAMCLEAR_NO_SUCH_SETTING" not in settings_variables()


def test_every_roamclear_process_names_both_servers() -> None:
    # with either unset, roamclear would start its embedded broker or PostgreSQL
    for name, service in roamclear_services().items():
        assert set(SERVER_VARIABLES) <= set(service["environment"]), name
    for name, container in roamclear_containers():
        named = {entry["name"] for entry in container.get("env", [])} | set(config_map_data())
        assert set(SERVER_VARIABLES) <= named, name
