"""Compose mode: the file is valid for the real Docker Compose and shaped as designed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import COMPOSE_FILE, ROOT, image_pinned, run_compose

APP_SERVICES = ("auth", "product", "cart", "order")
DATABASES = {f"{name}-db": name for name in APP_SERVICES}
# Ports the CI and developer machines already use (TOOLING.md): never publish on them.
MACHINE_PORTS = {3306, 5432, 6379, 5672, 1883, 4222}


def test_compose_file_passes_docker_compose_config(compose_tmp: Path, compose: dict) -> None:
    result = run_compose(["config", "-q"], compose_tmp)
    assert result.returncode == 0, result.stderr


def test_an_invalid_compose_file_is_rejected(compose_tmp: Path, compose: dict) -> None:
    """Negative control: the same check fails on a file with an unknown key."""
    broken = compose_tmp / "broken-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert "\n  gateway:\n" in text
    broken.write_text(text.replace("\n  gateway:\n", "\n  gateway:\n    portz: [8080]\n", 1))
    result = run_compose(["config", "-q"], compose_tmp, compose_file=broken)
    assert result.returncode != 0
    assert "portz" in result.stderr


def test_the_stack_has_every_part(services: dict) -> None:
    expected = {"gateway", "toxiproxy", "jaeger", "locust-master", "locust-worker", "keys",
                *APP_SERVICES, *DATABASES, *(f"{name}-migrate" for name in APP_SERVICES)}
    assert expected <= set(services), sorted(expected - set(services))
    assert "redis" not in services, "nothing uses Redis: leave it out until something does"


def members(services: dict, network: str) -> set[str]:
    return {name for name, service in services.items() if network in service.get("networks", {})}


def test_each_database_network_holds_its_service_alone(compose: dict, services: dict) -> None:
    for database, service in DATABASES.items():
        assert compose["networks"][database].get("internal") is True
        assert set(services[database]["networks"]) == {database}
        assert members(services, database) == {database, service, f"{service}-migrate"}


def test_the_application_network_is_internal_and_load_stays_on_the_edge(compose: dict,
                                                                         services: dict) -> None:
    assert compose["networks"]["app"].get("internal") is True
    assert members(services, "app") >= {"gateway", "toxiproxy", *APP_SERVICES}
    assert not members(services, "app") & {"locust-master", "locust-worker", "grafana", "console"}
    assert members(services, "edge") == {"gateway", "locust-master", "locust-worker", "jaeger"}


def test_toxiproxy_api_and_gateway_admin_listen_only_on_the_control_network(services: dict
                                                                             ) -> None:
    toxiproxy, gateway = services["toxiproxy"], services["gateway"]
    api_address = toxiproxy["networks"]["control"]["ipv4_address"]
    assert f"-host={api_address}" in toxiproxy["command"]
    assert gateway["environment"]["GATEWAY_ADMIN_HOST"] == (
        gateway["networks"]["control"]["ipv4_address"])
    # The published API port reaches the control address (the container's gateway network).
    assert toxiproxy["networks"]["control"]["gw_priority"] > 0
    assert members(services, "control") == {"toxiproxy", "gateway"}  # + console, prometheus


def test_secrets_have_no_default_and_their_absence_is_named(compose_tmp: Path) -> None:
    from tests.deploy.manifests import required_secrets

    secrets = required_secrets()
    assert {"AUTH_DB_PASSWORD", "PRODUCT_DB_PASSWORD", "CART_DB_PASSWORD",
            "ORDER_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= set(secrets)
    text = COMPOSE_FILE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert required == set(secrets), "every required variable stands blank in env.example"
    for name in secrets:
        assert "${" + name + ":-" not in text, f"{name} must not fall back to a default"
    refused = run_compose(["config", "-q"], compose_tmp, secrets=False)
    assert refused.returncode != 0
    assert "required variable" in refused.stderr and "env.example" in refused.stderr


def test_product_and_locust_workers_can_scale(services: dict) -> None:
    for name in ("product", "locust-worker"):
        assert "ports" not in services[name], f"{name}: a fixed host port blocks --scale"
        assert "container_name" not in services[name], f"{name}: container_name blocks --scale"
    assert not any("container_name" in service for service in services.values())


def test_only_the_gateway_publishes_an_application_port(services: dict) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"gateway", "toxiproxy", "jaeger", "locust-master"}
    assert [p["target"] for p in services["gateway"]["ports"]] == [8080]
    assert {p["target"] for p in services["toxiproxy"]["ports"]} == {8474}
    assert 16686 in {p["target"] for p in services["jaeger"]["ports"]}
    assert [p["target"] for p in services["locust-master"]["ports"]] == [8089]


def test_no_published_host_port_collides(services: dict) -> None:
    seen: dict[tuple[str, int], str] = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            published = int(port["published"])
            key = (port.get("host_ip", "0.0.0.0"), published)
            assert key not in seen, f"{name} and {seen[key]} both publish {key}"
            assert published not in MACHINE_PORTS, f"{name} publishes {published}, a machine port"
            seen[key] = name
    # Published on loopback by default: the Toxiproxy API has no authentication.
    assert {host for host, _ in seen} == {"127.0.0.1"}


def test_every_database_is_mysql_8_with_its_volume_credentials_and_healthcheck(
        services: dict, compose: dict) -> None:
    volumes = set()
    for name in DATABASES:
        database = services[name]
        assert database["image"].startswith("mysql:8."), name
        env = database["environment"]
        assert {"MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD"} <= set(env), name
        assert env.get("MYSQL_RANDOM_ROOT_PASSWORD") == "yes", name
        assert "mysqladmin ping" in " ".join(database["healthcheck"]["test"]), name
        [mount] = [v for v in database["volumes"] if v["target"] == "/var/lib/mysql"]
        assert mount["type"] == "volume"
        volumes.add(mount["source"])
        assert "ports" not in database, f"{name} must stay on micro_network"
    assert len(volumes) == len(DATABASES), "each database needs its own volume"
    assert volumes <= set(compose["volumes"])


def test_each_service_database_url_names_its_own_database(services: dict) -> None:
    for name, service in DATABASES.items():
        env = services[service]["environment"]
        url = env[f"{service.upper()}_DATABASE_URL"]
        db_env = services[name]["environment"]
        expected = (f"mysql+pymysql://{db_env['MYSQL_USER']}:{db_env['MYSQL_PASSWORD']}@{name}:3306/"
                    f"{db_env['MYSQL_DATABASE']}?charset=utf8mb4")
        assert url == expected, service
        # The one-shot migration job migrates the database the service then uses.
        assert services[f"{service}-migrate"]["environment"] == env


def test_start_order_follows_health(services: dict) -> None:
    def needs(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    for name in APP_SERVICES:
        assert needs(name)[f"{name}-db"] == "service_healthy"
        assert needs(name)[f"{name}-migrate"] == "service_completed_successfully"
        assert needs(name)["keys"] == "service_completed_successfully"
        assert needs(f"{name}-migrate")[f"{name}-db"] == "service_healthy"
        assert services[f"{name}-migrate"]["command"] == ["migrate", name]
    for caller in ("cart", "order", "gateway"):
        assert needs(caller)["toxiproxy"] == "service_healthy", caller
    assert {dep for dep, cond in needs("gateway").items() if cond == "service_healthy"} >= {
        *APP_SERVICES, "toxiproxy"}
    assert needs("locust-master")["gateway"] == "service_healthy"


def test_long_running_containers_restart_and_jobs_do_not(services: dict) -> None:
    jobs = {"keys", *(f"{name}-migrate" for name in APP_SERVICES)}
    for name, service in services.items():
        expected = "no" if name in jobs else "unless-stopped"
        assert service.get("restart") == expected, name


def test_app_healthchecks_probe_the_port_the_service_listens_on(services: dict) -> None:
    for name in (*APP_SERVICES, "gateway"):
        service = services[name]
        port = service["environment"][f"{name.upper()}_PORT"]
        assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/healthz", name
    api = services["toxiproxy"]["networks"]["control"]["ipv4_address"]
    assert services["toxiproxy"]["healthcheck"]["test"] == [
        "CMD", "/toxiproxy-cli", "--host", f"http://{api}:8474", "list"]


def test_token_keys_private_half_only_reaches_auth(services: dict) -> None:
    def sources(name: str) -> dict[str, Any]:
        return {v["source"]: v for v in services[name].get("volumes", []) if v["type"] == "volume"}

    assert set(sources("keys")) == {"token-private", "token-public"}
    assert not sources("keys")["token-private"].get("read_only")
    for name in services:
        mounted = sources(name)
        if "token-private" in mounted and name != "keys":
            assert name in ("auth", "auth-migrate"), f"{name} must not see the signing key"
            assert mounted["token-private"]["read_only"]
        if "token-public" in mounted and name != "keys":
            assert mounted["token-public"]["read_only"], name


def test_toxiproxy_is_the_real_pinned_image_loading_its_config(services: dict) -> None:
    toxiproxy = services["toxiproxy"]
    assert toxiproxy["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert "-config=/etc/toxiproxy/toxiproxy.json" in toxiproxy["command"]
    [mount] = toxiproxy["volumes"]
    assert Path(mount["source"]) == ROOT / "deploy" / "compose" / "toxiproxy.json"
    assert mount["target"] == "/etc/toxiproxy/toxiproxy.json" and mount["read_only"]
    json.loads((ROOT / "deploy" / "compose" / "toxiproxy.json").read_text())


def test_jaeger_takes_otlp(services: dict) -> None:
    jaeger = services["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_every_image_is_pinned_and_every_build_exists(services: dict) -> None:
    for name, service in services.items():
        assert image_pinned(service["image"]), f"{name}: {service['image']} is not pinned"
        build = service.get("build")
        if build:
            context = Path(build["context"])
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
            assert (context / ".dockerignore").is_file(), name


@pytest.mark.parametrize("name", [*APP_SERVICES, "gateway"])
def test_app_services_have_limits(services: dict, name: str) -> None:
    limits = services[name]["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and limits["memory"]


def test_env_example_names_only_variables_the_compose_file_uses() -> None:
    text = COMPOSE_FILE.read_text()
    example = (ROOT / "deploy" / "compose" / "env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#"):
            name = line.split("=", 1)[0]
            assert "${" + name in text, f"env.example sets {name}, which docker-compose.yml never reads"
