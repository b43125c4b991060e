"""deploy/compose.yaml: valid Compose, started in order, one least-privilege role per service."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from pipeline.dbroles import DbRole
from pipeline.topics import CDR_PARTITIONS
from tests.unit.deploy.deployfiles import (
    DEPLOY,
    ROOT,
    compose,
    env_example,
    roamclear_services,
)

SETUP_JOBS = ("migrate", "topics")  # one-shot, before everything else of roamclear's
ADMIN = "roamclear_admin"  # the postgres image's superuser: only `migrate` connects as it
# the role each service's DATABASE_URL names (the server for roamclear; its own role)
DATABASE_URL_ROLES = {
    "topics": DbRole.READER,
    "api": DbRole.API,
    "worker": DbRole.WORKER,
    "closer": DbRole.CLOSER,
    "deliverer": DbRole.DELIVERER,
    "cli": DbRole.READER,
}


def compose_validator() -> jsonschema.protocols.Validator:
    """The Compose specification's schema as check-jsonschema vendors it (offline)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    # it names draft 07 without the trailing '#' jsonschema looks the draft up by
    assert "draft-07" in schema["$schema"]
    return jsonschema.Draft7Validator(schema)


def test_the_file_follows_the_compose_specification() -> None:
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in compose_validator().iter_errors(compose())
    ]
    assert errors == []


def test_the_schema_check_catches_a_misspelt_key() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["worker"]["depend_on"] = broken["services"]["worker"].pop("depends_on")
    assert list(compose_validator().iter_errors(broken))


def test_the_services_come_up_in_order() -> None:
    services = compose()["services"]
    for name in SETUP_JOBS:
        assert services[name]["restart"] == "no", name
    for name, service in roamclear_services().items():
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        if name == "migrate":
            assert conditions == {"postgres": "service_healthy"}
        elif name == "topics":
            assert conditions == {"kafka": "service_healthy"}
        else:
            assert conditions == {
                "postgres": "service_healthy",
                "kafka": "service_healthy",
                "migrate": "service_completed_successfully",
                "topics": "service_completed_successfully",
            }, name
    awaited_healthy = {
        dep
        for service in services.values()
        for dep, spec in service.get("depends_on", {}).items()
        if spec["condition"] == "service_healthy"
    }
    for name in awaited_healthy:
        assert services[name]["healthcheck"]["test"], f"{name} is awaited healthy without a check"


def test_every_service_that_serves_http_is_checked_on_its_port() -> None:
    for name, service in roamclear_services().items():
        command: list[str] = service["command"]
        healthcheck = service.get("healthcheck", {})
        if "--metrics-port" in command:  # worker, closer, deliverer: /ready on that port
            port = command[command.index("--metrics-port") + 1]
            (probe,) = [part for part in healthcheck["test"] if "urlopen" in part]
            assert f"'http://127.0.0.1:{port}/ready'" in probe, name
        elif name == "api":  # the image's own check (test_dockerfile)
            assert "healthcheck" not in service
        else:  # the one-shot jobs and the operators' shell serve no HTTP
            assert healthcheck == {"disable": True}, name
            assert name in (*SETUP_JOBS, "cli"), f"{name} runs for long without a check"


def test_the_workers_fit_the_cdr_partitions() -> None:
    replicas = compose()["services"]["worker"]["deploy"]["replicas"]
    assert 2 <= replicas <= CDR_PARTITIONS
    assert CDR_PARTITIONS >= 3  # the floor for the CDR topic


def _user(url: str) -> str:
    user = urlsplit(url).username
    assert user is not None, url
    return user


def test_each_service_connects_as_its_own_role() -> None:
    for name, service in roamclear_services().items():
        environment: dict[str, str] = service["environment"]
        if name == "migrate":
            assert _user(environment["DATABASE_URL"]) == ADMIN
            assert "${POSTGRES_PASSWORD}" in environment["DATABASE_URL"]
            continue
        assert _user(environment["DATABASE_URL"]) == DATABASE_URL_ROLES[name].value, name
        for variable, url in environment.items():
            role_name = variable.removeprefix("ROAMCLEAR_DATABASE_URL_")
            if role_name != variable:
                assert _user(url) == DbRole[role_name].value, (name, variable)
        for variable, value in environment.items():
            for role_name in re.findall(r"\$\{DB_PASSWORD_(\w+)\}", value):
                assert _user(value) == DbRole[role_name].value, (name, variable)
            assert "POSTGRES_PASSWORD" not in value, f"{name} must not get the admin's password"


def test_the_database_creates_every_role_with_its_password() -> None:
    script = (DEPLOY / "postgres" / "roles.sh").read_text()
    created = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD :'(\w+)'", script))
    assert set(created) == {role.value for role in DbRole}
    passed = dict(re.findall(r'--set (\w+)="\$DB_PASSWORD_(\w+)"', script))
    for role in DbRole:
        variable = created[role.value]
        assert passed[variable] == role.name, role
    postgres_environment = compose()["services"]["postgres"]["environment"]
    for role in DbRole:
        assert f"DB_PASSWORD_{role.name}" in postgres_environment, role
    volumes = compose()["services"]["postgres"]["volumes"]
    assert any(v.startswith("./postgres/roles.sh:/docker-entrypoint-initdb.d/") for v in volumes)


def _interpolated(value: Any) -> set[str]:
    text = json.dumps(value)
    return set(re.findall(r"\$\{(\w+)", text))


def test_every_interpolated_variable_is_in_the_env_example_and_no_more() -> None:
    used = _interpolated(compose())
    assert used == set(env_example())


def test_the_env_file_is_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/.env" in ignored
    assert not (DEPLOY / ".env").exists() or "deploy/.env" in ignored


@pytest.mark.parametrize("service", ["api", "worker", "closer", "deliverer", "cli"])
def test_services_that_sign_or_verify_share_the_hub_key(service: str) -> None:
    environment = compose()["services"][service]["environment"]
    assert environment["ROAMCLEAR_HUB_KEY"].startswith("${ROAMCLEAR_HUB_KEY:?")
