"""The gateway's doors, tried from outside against `python -m gateway`: the operational views
are on the admin port only, a client's forwarding headers never reach a service, and the login
limiter cannot be dodged with a made-up `X-Forwarded-For`."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.config import GatewaySettings
from tests.attacks.edge_stack import start_gateway
from tests.gateway.fakes import FakeUpstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SPOOFED = {
    "Forwarded": "for=6.6.6.6;proto=https;host=admin.internal",
    "X-Real-IP": "6.6.6.6",
    "X-Original-URL": "/gateway/upstreams",
    "X-Rewrite-URL": "/gateway/upstreams",
    "X-Forwarded-Host": "admin.internal",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/admin",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Server": "admin.internal",
    "X-Client-IP": "6.6.6.6",
    "True-Client-IP": "6.6.6.6",
    "X-Cluster-Client-IP": "6.6.6.6",
    "X-HTTP-Method-Override": "DELETE",
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    made = {name: FakeUpstream(name) for name in ("auth", "product")}
    yield made
    for fake in made.values():
        fake.stop()


def _env(key_files: tuple[Path, Path], folder: Path) -> dict[str, str]:
    return {
        "BREAKWATER_TOKEN_PUBLIC_KEY_FILE": str(key_files[1]),
        "BREAKWATER_VAR_DIR": str(folder / "var"),
        "OTEL_TRACES_EXPORTER": "none",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


@pytest.fixture(scope="module")
def gateway(fakes, key_files, tmp_path_factory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("doors")
    process, admin = start_gateway(_env(key_files, folder), folder, fakes["auth"].url,
                                   fakes["product"].url)
    yield process.url, admin
    process.stop()


def test_the_admin_port_binds_loopback_by_default():
    assert GatewaySettings().admin_host == "127.0.0.1"


@pytest.mark.parametrize("path", ["/gateway/upstreams", "/metrics", "/gateway/upstreams/",
                                  "/api/v1/products/../../metrics", "/api/v1/metrics",
                                  "/api/v1/products/metrics"])
def test_operational_views_are_not_on_the_public_port(gateway, path):
    public, _admin = gateway
    response = requests.get(public + path, timeout=5)
    assert 400 <= response.status_code < 500 or response.json().get("instance") == "product"
    assert "breakwater_gateway_" not in response.text
    assert "recent_errors" not in response.text and "token_keys" not in response.text


def test_operational_views_answer_on_the_admin_port(gateway, fakes):
    _public, admin = gateway
    view = requests.get(admin + "/gateway/upstreams", timeout=5).json()
    assert view["upstreams"]["product"]["instances"][0]["url"] == fakes["product"].url
    assert "breakwater_gateway_requests_total" in requests.get(admin + "/metrics", timeout=5).text
    host, port = admin.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        assert sock.getpeername()[0] == "127.0.0.1"


def test_forwarding_headers_from_the_client_never_reach_a_service(gateway, fakes):
    public, _admin = gateway
    response = requests.get(public + "/api/v1/products", headers=SPOOFED, timeout=5)
    assert response.status_code == 200
    seen = fakes["product"].seen[-1].headers
    for name in SPOOFED:
        if name in ("X-Forwarded-Proto", "X-Forwarded-Host"):
            continue  # set by the gateway itself, checked below
        assert name.title() not in seen, f"{name} reached the service"
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] != "admin.internal"


def test_a_made_up_forwarded_for_does_not_dodge_the_login_limit(fakes, key_files, tmp_path):
    process, _admin = start_gateway(_env(key_files, tmp_path), tmp_path, fakes["auth"].url,
                                    fakes["product"].url, trust_forwarded="on", login_burst="3",
                                    login_rate_per_minute="1")
    try:
        login = process.url + "/api/v1/auth/login"
        # A trusted proxy appended 203.0.113.7; the client wrote a new address before it each time.
        statuses = [requests.post(login, json={}, timeout=5, headers={
            "X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"}).status_code for n in range(6)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429, 429]
        # Another client behind the same proxy has its own allowance.
        other = requests.post(login, json={}, timeout=5,
                              headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 200
    finally:
        process.stop()
