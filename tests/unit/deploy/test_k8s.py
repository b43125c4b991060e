"""deploy/k8s: valid Kubernetes objects, wired the way the runbook says."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline.config import Settings
from pipeline.dbroles import DbRole
from pipeline.topics import CDR_PARTITIONS
from tests.unit.deploy.deployfiles import (
    DEPLOY,
    K8S,
    ROOT,
    config_map_data,
    dockerfile,
    manifest_paths,
    manifests,
    pod_spec,
    roamclear_containers,
)

KUBERNETES_VERSION = "1.30"  # the oldest release the manifests are held to
DEPLOYMENT_ROLES = {  # each Deployment's DATABASE_URL role
    "roamclear-api": DbRole.API,
    "roamclear-worker": DbRole.WORKER,
    "roamclear-closer": DbRole.CLOSER,
    "roamclear-deliverer": DbRole.DELIVERER,
}


def _objects() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.relative_to(K8S)}:{doc['kind']}", doc) for path, doc in manifests()]


@pytest.mark.parametrize(("where", "document"), _objects(), ids=[w for w, _ in _objects()])
def test_each_object_validates_against_the_kubernetes_schema(
    where: str, document: dict[str, Any]
) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_an_unknown_field() -> None:
    (deployment,) = [
        d
        for _, d in manifests()
        if d["metadata"]["name"] == "roamclear-worker" and d["kind"] == "Deployment"
    ]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _kustomization(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return document


def _reached(directory: Path) -> set[Path]:
    """Every manifest file a kustomization includes, through the directories it names."""
    files: set[Path] = set()
    for resource in _kustomization(directory)["resources"]:
        target = (directory / resource).resolve()
        assert target.exists(), f"{directory}/kustomization.yaml names missing {resource}"
        files |= _reached(target) if target.is_dir() else {target}
    return files


def test_the_kustomizations_hold_every_manifest_once_and_apart() -> None:
    services, migration = _reached(K8S), _reached(K8S / "migrate")
    assert services | migration == {path.resolve() for path in manifest_paths()}
    shared = {path.name for path in services & migration}
    assert shared == {"configmap.yaml"}  # the Job runs first, alone; the config is both's
    kinds = {doc["kind"] for path, doc in manifests() if path.resolve() in migration}
    assert kinds == {"ConfigMap", "Job"}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for directory in (K8S, K8S / "migrate"):
        (image,) = _kustomization(directory)["images"]
        assert image == {"name": "roamclear", "newTag": version}  # the release they run


def test_every_container_has_requests_limits_and_no_root() -> None:
    for _, document in manifests():
        spec = pod_spec(document)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        for volume in spec.get("volumes", []):
            if "secret" in volume:  # mounted root-owned: readable through the pod's group
                assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
                assert volume["secret"]["defaultMode"] & 0o777 == 0o440
        for container in spec.get("initContainers", []) + spec["containers"]:
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, container
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert "command" not in container, "the image's entry point is roamclear"


def _served_port(args: list[str]) -> str:
    """The port a roamclear command serves HTTP on: the API's --port, else --metrics-port."""
    option = "--port" if "--port" in args else "--metrics-port"
    assert option in args, f"{args} serves no HTTP"
    return args[args.index(option) + 1]


def test_every_long_running_service_is_probed_on_the_port_it_serves() -> None:
    probed = set()
    for _, document in manifests():
        if document["kind"] != "Deployment":
            continue
        (container,) = document["spec"]["template"]["spec"]["containers"]
        name = document["metadata"]["name"]
        (port,) = container["ports"]
        assert _served_port(container["args"]) == str(port["containerPort"]), name
        probes = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
        for probe, path in probes.items():
            assert container[probe]["httpGet"] == {"path": path, "port": port["name"]}, name
        probed.add(name)
    assert probed == set(DEPLOYMENT_ROLES)  # api, worker, closer, deliverer


def test_the_metrics_ports_are_reachable_from_outside_the_container() -> None:
    # the worker's, closer's and deliverer's port binds 127.0.0.1 unless told (Settings)
    assert Settings.from_env({}).metrics_host == "127.0.0.1"
    (runtime_env,) = [
        i.arguments for i in dockerfile() if i.keyword == "ENV" and i.stage == "runtime"
    ]
    image = Settings.from_env(dict(a.split("=", 1) for a in runtime_env.split()))
    assert image.metrics_host == "0.0.0.0"
    assert "ROAMCLEAR_METRICS_HOST" not in config_map_data()  # the image's value holds


def test_workers_scale_within_the_partitions_and_drain_one_at_a_time() -> None:
    objects = {(d["kind"], d["metadata"]["name"]): d for _, d in manifests()}
    worker = objects[("Deployment", "roamclear-worker")]
    assert 2 <= worker["spec"]["replicas"] <= CDR_PARTITIONS
    budget = objects[("PodDisruptionBudget", "roamclear-worker")]
    assert budget["spec"]["selector"] == worker["spec"]["selector"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert "up to the" in (K8S / "worker.yaml").read_text()  # the comment saying so
    service = objects[("Service", "roamclear-api")]
    api = objects[("Deployment", "roamclear-api")]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]


def _secret_refs(container: dict[str, Any]) -> dict[str, str]:
    return {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]["key"]
        for entry in container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }


def test_each_container_gets_its_own_role_and_only_the_job_the_admin() -> None:
    for name, container in roamclear_containers():
        references = _secret_refs(container)
        deployment = name.split("/")[0]
        if name == "roamclear-migrate/migrate":
            assert references == {"DATABASE_URL": "admin-url"}
            continue
        assert "admin-url" not in references.values(), name
        if deployment in DEPLOYMENT_ROLES:
            role = DEPLOYMENT_ROLES[deployment]
            assert references["DATABASE_URL"] == f"{role.name.lower()}-url", name
        for variable, key in references.items():
            role_name = variable.removeprefix("ROAMCLEAR_DATABASE_URL_")
            if role_name != variable:
                assert key == f"{DbRole[role_name].name.lower()}-url", (name, variable)
        for envs in container["envFrom"]:
            assert envs == {"configMapRef": {"name": "roamclear-config"}}


def test_the_runbook_creates_every_secret_key_the_manifests_read() -> None:
    read = {
        key for _, container in roamclear_containers() for key in _secret_refs(container).values()
    }
    runbook = (DEPLOY / "README.md").read_text()
    created = set(re.findall(r"--from-literal=([\w-]+)=", runbook))
    assert read <= created
    mounted = {
        volume["secret"]["secretName"]
        for _, document in manifests()
        if (spec := pod_spec(document)) is not None
        for volume in spec.get("volumes", [])
        if "secret" in volume
    }
    for secret in mounted | {"roamclear-db"}:
        assert f"create secret generic {secret}" in runbook, secret
