"""Kubernetes: every overlay renders, every resource is valid, and the shape is as designed."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import (
    KUBERNETES,
    OVERLAYS,
    Cluster,
    containers,
    image_pinned,
    need,
    pod_spec,
    tool,
)

APP_SERVICES = ("auth", "product", "cart", "order")
APP_DEPLOYMENTS = (*APP_SERVICES, "gateway")
# Images the cluster runs; kubernetes-validate's newest offline schema is used by default.
PINNED_THIRD_PARTY = {"mysql:8.4.6", "ghcr.io/shopify/toxiproxy:2.12.0",
                      "jaegertracing/all-in-one:1.76.0"}


def validate(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    command = [need(lambda: tool("kubernetes-validate")), "--strict", "--quiet", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def write_documents(cluster: Cluster, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, doc in enumerate(cluster.documents):
        path = folder / f"{number:03d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        paths.append(path)
    return paths


def test_every_rendered_resource_passes_strict_validation(clusters: dict[str, Cluster],
                                                          tmp_path: Path) -> None:
    paths = [path for overlay, cluster in clusters.items()
             for path in write_documents(cluster, tmp_path / overlay)]
    result = validate(paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field(clusters: dict[str, Cluster],
                                                    tmp_path: Path) -> None:
    """Negative control: the validator does fail, here on a misspelt HPA field."""
    hpa = dict(clusters["local"].get("HorizontalPodAutoscaler", "product"))
    hpa["spec"] = {**hpa["spec"], "maxReplica": 3}
    path = tmp_path / "hpa.yaml"
    path.write_text(yaml.safe_dump(hpa))
    result = validate([path])
    assert result.returncode != 0
    assert "maxReplica" in result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_has_every_part(clusters: dict[str, Cluster], overlay: str) -> None:
    cluster = clusters[overlay]
    for name in (*APP_DEPLOYMENTS, "toxiproxy", "jaeger", "locust-master", "locust-worker"):
        cluster.get("Deployment", name)
    for name in (*APP_DEPLOYMENTS, "toxiproxy", "jaeger", "locust-master"):
        cluster.get("Service", name)
    for name in APP_SERVICES:
        statefulset = cluster.get("StatefulSet", f"{name}-db")
        assert statefulset["spec"]["volumeClaimTemplates"], name
        assert cluster.get("Service", f"{name}-db")["spec"]["clusterIP"] == "None"
    cluster.get("Job", "bootstrap-secrets")
    assert {doc["metadata"].get("namespace") for doc in cluster.documents
            if doc["kind"] != "Namespace"} == {"breakwater"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_app_pods_are_probed_non_root_and_read_only(clusters: dict[str, Cluster],
                                                    overlay: str) -> None:
    cluster = clusters[overlay]
    for name in APP_DEPLOYMENTS:
        deployment = cluster.get("Deployment", name)
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        [main] = spec["containers"]
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        tmp = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}["/tmp"]
        assert any(v["name"] == tmp and "emptyDir" in v for v in spec["volumes"]), name
        for container in containers(deployment):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert security["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert container["resources"]["limits"]["cpu"], (name, container["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_migrates_in_an_init_container(clusters: dict[str, Cluster],
                                                    overlay: str) -> None:
    cluster = clusters[overlay]
    for name in APP_SERVICES:
        deployment = cluster.get("Deployment", name)
        [init] = pod_spec(deployment)["initContainers"]
        [main] = pod_spec(deployment)["containers"]
        assert init["args"] == ["migrate", name]
        assert main["args"] == ["serve", name]
        assert init["image"] == main["image"]
        assert cluster.container_env(init) == cluster.container_env(main), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_product_autoscales_on_cpu_and_keeps_a_disruption_budget(clusters: dict[str, Cluster],
                                                                 overlay: str) -> None:
    cluster = clusters[overlay]
    hpa = cluster.get("HorizontalPodAutoscaler", "product")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "product"}
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    [main] = pod_spec(cluster.get("Deployment", "product"))["containers"]
    assert main["resources"]["requests"]["cpu"], "CPU utilisation needs a CPU request"
    pdb = cluster.get("PodDisruptionBudget", "product")
    assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "product"}


def test_production_like_is_bigger_than_local(clusters: dict[str, Cluster]) -> None:
    local, prod = clusters["local"], clusters["production-like"]
    for name in APP_DEPLOYMENTS:
        assert (prod.get("Deployment", name)["spec"]["replicas"]
                > local.get("Deployment", name)["spec"]["replicas"]), name
    assert (prod.get("HorizontalPodAutoscaler", "product")["spec"]["maxReplicas"]
            > local.get("HorizontalPodAutoscaler", "product")["spec"]["maxReplicas"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_pinned(clusters: dict[str, Cluster], overlay: str) -> None:
    images = set()
    for workload in clusters[overlay].workloads():
        for container in containers(workload):
            assert image_pinned(container["image"]), (workload["metadata"]["name"], container["image"])
            images.add(container["image"])
    assert images >= PINNED_THIRD_PARTY


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_auth_mounts_the_signing_key(clusters: dict[str, Cluster], overlay: str) -> None:
    for workload in clusters[overlay].workloads():
        for volume in pod_spec(workload).get("volumes", []):
            if volume.get("secret", {}).get("secretName") != "token-keys":
                continue
            keys = {item["key"] for item in volume["secret"]["items"]}
            if workload["metadata"]["name"] == "auth":
                assert keys == {"token_ed25519.pem", "token_ed25519.pub.pem"}
            else:
                assert keys == {"token_ed25519.pub.pem"}, workload["metadata"]["name"]


def _bootstrap_module() -> Any:
    path = KUBERNETES / "base" / "bootstrap_secrets.py"
    spec = importlib.util.spec_from_file_location("bootstrap_secrets", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_referenced_is_one_the_bootstrap_job_creates(clusters: dict[str, Cluster],
                                                                   overlay: str) -> None:
    made = {doc["metadata"]["name"]: set(doc["stringData"])
            for doc in _bootstrap_module().desired_secrets(make_password=lambda: "pw")}
    cluster = clusters[overlay]
    referenced: set[tuple[str, str]] = set()
    for workload in cluster.workloads():
        for container in containers(workload):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    referenced.add((volume["secret"]["secretName"], item["key"]))
    for name, key in referenced:
        assert key in made.get(name, set()), f"{overlay}: nothing creates secret {name}/{key}"
    assert "Secret" not in cluster.by_kind, "no Secret is committed; the Job makes them"
    role = cluster.get("Role", "bootstrap-secrets")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]}]


def test_bootstrap_database_urls_point_at_each_database_service(clusters: dict[str, Cluster]) -> None:
    cluster = clusters["local"]
    for doc in _bootstrap_module().desired_secrets(make_password=lambda: "pw"):
        data = doc["stringData"]
        if "url" in data:
            service = doc["metadata"]["name"]
            cluster.get("Service", service)
            assert data["url"] == (f"mysql+pymysql://{data['username']}:pw@{service}:3306/"
                                   f"{data['database']}?charset=utf8mb4")


# -- network policies -------------------------------------------------------------------------
def _ingress_sources(cluster: Cluster, target: str, port: int) -> set[str]:
    """Names of the pods (by app.kubernetes.io/name) allowed to reach `target` on `port`."""
    sources = set()
    for policy in cluster.by_kind["NetworkPolicy"].values():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector and selector.get("app.kubernetes.io/name") != target:
            continue
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            if "from" not in rule:
                sources.add("*")
            for peer in rule.get("from", []):
                labels = peer["podSelector"]["matchLabels"]
                sources.add(labels.get("app.kubernetes.io/name", "<any breakwater pod>"))
    return sources


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_only_real_callers_through(clusters: dict[str, Cluster],
                                                        overlay: str) -> None:
    cluster = clusters[overlay]
    deny = cluster.get("NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    ports = {"auth": 5000, "product": 5002, "cart": 5003, "order": 5004}
    for name, port in ports.items():
        assert _ingress_sources(cluster, name, port) == {"toxiproxy"}, name
        assert _ingress_sources(cluster, f"{name}-db", 3306) == {name}, name
    assert _ingress_sources(cluster, "gateway", 8080) == {"*"}
    # Neither the gateway's admin port nor the Toxiproxy API admits any pod (port-forward only).
    assert _ingress_sources(cluster, "gateway", 8081) == set()
    assert _ingress_sources(cluster, "toxiproxy", 8474) == set()
    assert _ingress_sources(cluster, "toxiproxy", 21000) == {"gateway"}
    assert _ingress_sources(cluster, "toxiproxy", 21002) == {"gateway", "cart", "order"}
    assert _ingress_sources(cluster, "toxiproxy", 21003) == {"gateway", "order"}
    assert _ingress_sources(cluster, "toxiproxy", 21004) == {"gateway"}
    assert _ingress_sources(cluster, "jaeger", 4318) == {"<any breakwater pod>"}
    # That selector only works if every pod carries the label.
    for workload in cluster.workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels.get("app.kubernetes.io/part-of") == "breakwater", workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_admin_port_is_declared_but_never_in_its_service(clusters: dict[str, Cluster],
                                                                     overlay: str) -> None:
    cluster = clusters[overlay]
    [gateway] = [c for c in containers(cluster.get("Deployment", "gateway"), init=False)
                 if c["name"] == "gateway"]
    env = cluster.container_env(gateway)
    assert {p["name"]: p["containerPort"] for p in gateway["ports"]} == {
        "http": int(env["GATEWAY_PORT"]), "admin": int(env["GATEWAY_ADMIN_PORT"])}
    service_ports = cluster.get("Service", "gateway")["spec"]["ports"]
    assert [p["targetPort"] for p in service_ports] == ["http"]
