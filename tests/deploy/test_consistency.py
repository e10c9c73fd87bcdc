"""The code and every mode agree: settings, peers through Toxiproxy, CPU limits, locustfile.

The services' settings are introspected, so a field added later (a new peer URL, say) fails
here until compose and Kubernetes set it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.config import GatewaySettings
from gateway.routes import ROUTES, UPSTREAMS
from services.auth.config import AuthSettings
from services.cart.config import CartSettings
from services.common.settings import Settings
from services.order.config import OrderSettings
from services.product.config import ProductSettings
from tests.deploy.manifests import (
    IMAGE_APP_DIR,
    KUBERNETES,
    OVERLAYS,
    ROOT,
    Cluster,
    containers,
    cpu_quantity,
    pod_spec,
)

SETTINGS: dict[str, type[Settings]] = {
    "auth": AuthSettings, "product": ProductSettings, "cart": CartSettings,
    "order": OrderSettings, "gateway": GatewaySettings,
}
APP_SERVICES = ("auth", "product", "cart", "order")

# Fields that must be set explicitly in every mode (besides the generic rules in `required`).
EXPLICIT = {
    "port", "database_url", "environment", "resilience", "log_level", "token_issuer",
    "token_audience", "token_public_key_file", "token_private_key_file", "auto_migrate",
    "instance_id", "host",
}
# Fields deliberately left at their defaults, and why.
DEFAULT_OK = {
    "registry_file": "every upstream is set explicitly, so the registry file is never read",
    "token_public_key": "the key is a file from a volume/Secret (token_public_key_file)",
    "token_private_key": "the key is a file from a volume/Secret (token_private_key_file)",
    "token_jwks_file": "verifiers read the public key file; auth's key set is rotated as "
                       "docs/KEY_ROTATION.md says for containers",
    "token_jwks_endpoint": "the same: the public key file, not a call outside Toxiproxy",
    "order_service_secret_file": "the secret is set itself (BREAKWATER_ORDER_SERVICE_SECRET)",
}
# Set in compose by the entry point, not the file: one value per replica of a scaled service.
COMPOSE_DERIVED = {"instance_id": "entrypoint.sh serve: <service>-<container hostname>"}
# Read by code other than the Settings classes (observability/settings.py, var_dir).
OTHER_READERS = {"BREAKWATER_VAR_DIR", "BREAKWATER_JAEGER_URL", "BREAKWATER_ENVIRONMENT"}
TRACING = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT")


def required(cls: type[Settings]) -> list[str]:
    """The fields of `cls` a deployment must set: peers, files, ports, and EXPLICIT."""
    names = [f.name for f in dataclasses.fields(cls)]
    return [name for name in names if name not in DEFAULT_OK and (
        name in EXPLICIT or name.endswith(("_url", "_file")) or name.startswith("upstream_"))]


def shared_fields() -> set[str]:
    """Every field of every process: what a shared `BREAKWATER_*` variable may name."""
    return {f.name for cls in SETTINGS.values() for f in dataclasses.fields(cls)}


def lookup(env: dict[str, str], cls: type[Settings], name: str) -> str | None:
    """The value a field takes from `env`, as `Settings.from_env` reads it."""
    for key in (f"{cls.prefix}_{name.upper()}", f"BREAKWATER_{name.upper()}"):
        if key in env:
            return env[key]
    return None


def check_environment(where: str, env: dict[str, str], cls: type[Settings],
                      derived: dict[str, str] | None = None) -> None:
    missing = [name for name in required(cls)
               if lookup(env, cls, name) is None and name not in (derived or {})]
    assert not missing, f"{where}: not set: {', '.join(f'{cls.prefix}_{m.upper()}' for m in missing)}"
    fields = {f.name for f in dataclasses.fields(cls)}
    prefixes = {other.prefix for other in SETTINGS.values()} | {"BREAKWATER"}
    for key in env:
        prefix, _, rest = key.partition("_")
        if prefix not in prefixes or key in OTHER_READERS:
            continue
        assert prefix in (cls.prefix, "BREAKWATER"), f"{where}: {key} is for another process"
        # BREAKWATER_* is shared by the stack: read by this process or by another one.
        known = fields if prefix == cls.prefix else shared_fields()
        assert rest.lower() in known, f"{where}: {key} is read by nothing ({cls.__name__})"
    for key in TRACING:
        assert env.get(key), f"{where}: {key} is not set"
    assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://jaeger:4318", where


def peer_urls(env: dict[str, str], cls: type[Settings]) -> dict[str, list[str]]:
    """Every peer a process is pointed at: {peer service: [base URLs]}."""
    peers: dict[str, list[str]] = {}
    for field in dataclasses.fields(cls):
        match = re.fullmatch(r"(\w+)_url|upstream_(\w+)", field.name)
        if match and field.name != "database_url":
            value = lookup(env, cls, field.name) or ""
            peers[match.group(1) or match.group(2)] = [u.strip() for u in value.split(",") if u.strip()]
    return peers


def proxies(path: Path) -> dict[str, dict[str, Any]]:
    return {proxy["name"]: proxy for proxy in json.loads(path.read_text())}


def check_peers_go_through_toxiproxy(where: str, env: dict[str, str], cls: type[Settings],
                                     table: dict[str, dict[str, Any]], ports: dict[str, int]
                                     ) -> None:
    """Each peer URL is a Toxiproxy listener whose upstream is that peer's real address."""
    listeners = {int(p["listen"].rpartition(":")[2]): p for p in table.values()}
    for peer, urls in peer_urls(env, cls).items():
        assert urls, f"{where}: no address for {peer}"
        for url in urls:
            parts = urlsplit(url)
            assert parts.hostname == "toxiproxy", f"{where}: {peer} at {url} bypasses Toxiproxy"
            proxy = listeners.get(parts.port or 80)
            assert proxy, f"{where}: {url} is no Toxiproxy listener"
            assert proxy["upstream"] == f"{peer}:{ports[peer]}", (
                f"{where}: {url} leads to {proxy['upstream']}, not {peer}:{ports[peer]}")


# -- compose ----------------------------------------------------------------------------------
def compose_ports(services: dict[str, Any]) -> dict[str, int]:
    return {name: int(services[name]["environment"][f"{name.upper()}_PORT"]) for name in APP_SERVICES}


@pytest.mark.parametrize("name", [*APP_SERVICES, "gateway"])
def test_compose_sets_every_setting_the_process_reads(services: dict, name: str) -> None:
    check_environment(f"compose {name}", services[name]["environment"], SETTINGS[name],
                      derived=COMPOSE_DERIVED if name in APP_SERVICES else None)


@pytest.mark.parametrize("name", [*APP_SERVICES, "gateway"])
def test_compose_peers_are_toxiproxy_listeners(services: dict, name: str) -> None:
    table = proxies(ROOT / "deploy" / "compose" / "toxiproxy.json")
    check_peers_go_through_toxiproxy(f"compose {name}", services[name]["environment"],
                                     SETTINGS[name], table, compose_ports(services))


def test_compose_toxiproxy_has_one_proxy_per_service(services: dict) -> None:
    table = proxies(ROOT / "deploy" / "compose" / "toxiproxy.json")
    ports = compose_ports(services)
    assert set(table) == set(UPSTREAMS) == set(APP_SERVICES)
    for name, proxy in table.items():
        # Named after the service, so `breakwater chaos down cart` finds it.
        assert proxy["upstream"] == f"{name}:{ports[name]}"
        assert proxy["listen"].startswith("0.0.0.0:"), "listen on every interface of the container"
        assert proxy.get("enabled", True)
    listens = [p["listen"] for p in table.values()]
    assert len(set(listens)) == len(listens)


def test_every_gateway_upstream_is_a_compose_service(services: dict) -> None:
    routed = {route.upstream for route in ROUTES if route.upstream}
    assert routed <= set(UPSTREAMS)
    for upstream in UPSTREAMS:
        assert upstream in services
        assert f"GATEWAY_UPSTREAM_{upstream.upper()}" in services["gateway"]["environment"]


def test_compose_cpu_limits_are_the_source_of_truths(services: dict) -> None:
    limits = cpu_profile("compose")
    for name, cpus in limits.items():
        assert float(services[name]["deploy"]["resources"]["limits"]["cpus"]) == cpus, name


def test_compose_locustfile_exists(services: dict) -> None:
    for name in ("locust-master", "locust-worker"):
        assert_image_path_exists(locustfile(services[name]["command"]), name)


# -- kubernetes -------------------------------------------------------------------------------
def main_container(cluster: Cluster, name: str) -> dict[str, Any]:
    [container] = pod_spec(cluster.get("Deployment", name))["containers"]
    return container


def kubernetes_ports(cluster: Cluster) -> dict[str, int]:
    ports = {}
    for name in APP_SERVICES:
        env = cluster.container_env(main_container(cluster, name))
        port = int(env[f"{name.upper()}_PORT"])
        [service_port] = cluster.get("Service", name)["spec"]["ports"]
        [container_port] = main_container(cluster, name)["ports"]
        assert container_port["containerPort"] == port, name
        assert service_port["targetPort"] == container_port["name"], name
        ports[name] = service_port["port"]
    return ports


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", [*APP_SERVICES, "gateway"])
def test_kubernetes_sets_every_setting_the_process_reads(clusters: dict[str, Cluster],
                                                         overlay: str, name: str) -> None:
    cluster = clusters[overlay]
    deployment = cluster.get("Deployment", name)
    for container in containers(deployment):
        check_environment(f"{overlay} {name}/{container['name']}",
                          cluster.container_env(container), SETTINGS[name])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_peers_are_toxiproxy_listeners(clusters: dict[str, Cluster], overlay: str) -> None:
    cluster = clusters[overlay]
    table = {p["name"]: p for p in json.loads(cluster.config_map("toxiproxy-config")["toxiproxy.json"])}
    ports = kubernetes_ports(cluster)
    for name in (*APP_SERVICES, "gateway"):
        check_peers_go_through_toxiproxy(f"{overlay} {name}",
                                         cluster.container_env(main_container(cluster, name)),
                                         SETTINGS[name], table, ports)
    # Toxiproxy's pod and Service expose every listener, and mount the config it is told to load.
    listen_ports = {int(p["listen"].rpartition(":")[2]) for p in table.values()}
    toxiproxy = main_container(cluster, "toxiproxy")
    assert listen_ports <= {p["containerPort"] for p in toxiproxy["ports"]}
    assert listen_ports <= {p["port"] for p in cluster.get("Service", "toxiproxy")["spec"]["ports"]}
    assert "-config=/etc/toxiproxy/toxiproxy.json" in toxiproxy["args"]
    assert toxiproxy["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"


def test_both_modes_define_the_same_proxies(clusters: dict[str, Cluster]) -> None:
    compose_table = json.loads((ROOT / "deploy" / "compose" / "toxiproxy.json").read_text())
    for cluster in clusters.values():
        assert json.loads(cluster.config_map("toxiproxy-config")["toxiproxy.json"]) == compose_table
    assert json.loads((KUBERNETES / "base" / "toxiproxy.json").read_text()) == compose_table


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_gateway_upstream_is_a_kubernetes_service(clusters: dict[str, Cluster],
                                                        overlay: str) -> None:
    for upstream in UPSTREAMS:
        clusters[overlay].get("Service", upstream)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_cpu_limits_are_the_source_of_truths(clusters: dict[str, Cluster],
                                                        overlay: str) -> None:
    cluster = clusters[overlay]
    for name, cpus in cpu_profile(overlay).items():
        assert cpu_quantity(main_container(cluster, name)["resources"]["limits"]["cpu"]) == cpus, (
            f"{overlay} {name}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_locustfile_exists(clusters: dict[str, Cluster], overlay: str) -> None:
    for name in ("locust-master", "locust-worker"):
        assert_image_path_exists(locustfile(main_container(clusters[overlay], name)["args"]), name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_and_compose_share_the_environment_contract(
        clusters: dict[str, Cluster], services: dict, overlay: str) -> None:
    """Same variable names in both modes; only addresses, credentials and ids may differ."""
    cluster = clusters[overlay]
    for name in (*APP_SERVICES, "gateway"):
        in_compose = set(services[name]["environment"])
        in_kubernetes = set(cluster.container_env(main_container(cluster, name)))
        allowed = {f"{name.upper()}_INSTANCE_ID"}
        assert in_compose ^ in_kubernetes <= allowed, (name, sorted(in_compose ^ in_kubernetes))


# -- the source of truth, the locustfile, the docs --------------------------------------------
# Which profile of local_stack/limits.py each mode runs with.
MODE_PROFILES = {"compose": None, "local": None, "production-like": "production-like"}


def cpu_profile(mode: str) -> dict[str, float]:
    """The CPUs per service `mode` must use (None: the module's DEFAULT_PROFILE)."""
    try:
        from local_stack import limits
    except ImportError as exc:  # pragma: no cover - depends on the supervisor being there
        pytest.fail(f"local_stack/limits.py is the CPU source of truth and is missing: {exc}")
    name = MODE_PROFILES[mode] or limits.DEFAULT_PROFILE
    if name not in limits.PROFILES:
        pytest.skip(f"local_stack/limits.py has no {name!r} profile yet: add one "
                    f"(deploy/kubernetes/overlays/production-like uses gateway 2, others 1 CPU)")
    cpus = limits.profile(name)
    assert set(cpus) >= set(SETTINGS), f"profile {name!r} must cover {sorted(SETTINGS)}"
    return cpus


def locustfile(argv: list[str]) -> str:
    for flag in ("--locustfile", "-f"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    raise AssertionError(f"no locustfile named in {argv}")


def assert_image_path_exists(path: str, where: str) -> None:
    assert path.startswith(IMAGE_APP_DIR + "/"), f"{where}: {path} is outside the image's app"
    assert (ROOT / path.removeprefix(IMAGE_APP_DIR + "/")).is_file(), f"{where}: {path} missing"


def test_deploy_docs_cover_both_modes() -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    for needle in ("docker compose up --build -d", "--scale product=3", "http://localhost:8080",
                   "16686", "8089", "--toxiproxy http://localhost:8474", "docker compose down",
                   "kubectl apply -k deploy/kubernetes/overlays/local", "port-forward svc/gateway 8080",
                   "kubectl delete -k", "hpa"):
        assert needle in text, f"docs/DEPLOY.md does not mention {needle!r}"


def test_the_settings_check_catches_a_missing_peer_and_a_typo(services: dict) -> None:
    """Negative control of the checks above, on a copy of order's compose environment."""
    env = dict(services["order"]["environment"])
    del env["ORDER_CART_URL"]
    with pytest.raises(AssertionError, match="ORDER_CART_URL"):
        check_environment("order", env, OrderSettings, derived=COMPOSE_DERIVED)
    env = {**services["order"]["environment"], "ORDER_CART_URLS": "http://toxiproxy:21003"}
    with pytest.raises(AssertionError, match="read by nothing"):
        check_environment("order", env, OrderSettings, derived=COMPOSE_DERIVED)
    env = {**services["order"]["environment"], "ORDER_CART_URL": "http://cart:5003"}
    with pytest.raises(AssertionError, match="bypasses Toxiproxy"):
        check_peers_go_through_toxiproxy("order", env, OrderSettings,
                                         proxies(ROOT / "deploy" / "compose" / "toxiproxy.json"),
                                         compose_ports(services))
