"""Where instances come from: static lists, the registry file (re-read on change), DNS."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from gateway.config import GatewaySettings
from gateway.discovery import (
    DnsSource,
    Registry,
    StaticSource,
    build_sources,
    parse_registry,
    source_from_spec,
)
from tests.support.processes import wait_until


def write_registry(path: Path, services: dict[str, list]) -> None:
    """Replace the registry file atomically, as the supervisor does."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"version": 1, "services": services}))
    os.replace(temporary, path)


def test_static_spec_lists_every_instance():
    source = source_from_spec("http://127.0.0.1:5002, http://127.0.0.1:5012/")
    assert source() == ("http://127.0.0.1:5002", "http://127.0.0.1:5012")


@pytest.mark.parametrize("spec", ["127.0.0.1:5002", "dns://product", "ftp://x:1"])
def test_bad_specs_are_refused_with_a_clear_error(spec):
    with pytest.raises(ValueError):
        source_from_spec(spec)


def test_explicit_setting_wins_then_registry_then_default(tmp_path):
    settings = GatewaySettings.from_env(
        {"upstream_product": "http://10.0.0.1:1", "registry_file": str(tmp_path / "registry.json")},
        environ={},
    )
    sources = build_sources(settings, ["product", "cart"])
    assert sources["product"]() == ("http://10.0.0.1:1",)
    assert sources["cart"]() == ()  # the registry file does not exist yet
    defaults = build_sources(GatewaySettings.from_env(environ={}), ["cart"])
    assert defaults["cart"]() == ("http://127.0.0.1:5003",)


def test_registry_format_accepts_urls_and_objects():
    services = parse_registry(
        {
            "services": {
                "product": [
                    "http://127.0.0.1:1/",
                    {"url": "http://127.0.0.1:2", "id": "p2"},
                    {"url": "http://127.0.0.1:3", "enabled": False},
                ],
                "cart": [],
            }
        }
    )
    assert services == {"product": ("http://127.0.0.1:1", "http://127.0.0.1:2"), "cart": ()}


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"services": []},
        {"services": {"cart": "http://x:1"}},
        {"services": {"cart": ["not a url"]}},
    ],
)
def test_malformed_registry_documents_are_refused(document):
    with pytest.raises(ValueError):
        parse_registry(document)


def test_registry_keeps_the_last_good_content_when_the_file_breaks(tmp_path):
    path = tmp_path / "registry.json"
    write_registry(path, {"cart": ["http://127.0.0.1:7"]})
    now = [0.0]
    registry = Registry(str(path), poll=1.0, clock=lambda: now[0])
    assert registry.instances("cart") == ("http://127.0.0.1:7",)
    path.write_text("{ half a fil")
    now[0] += 2
    assert registry.instances("cart") == ("http://127.0.0.1:7",)
    write_registry(path, {"cart": ["http://127.0.0.1:8"]})
    assert registry.instances("cart") == ("http://127.0.0.1:7",)  # not re-checked before `poll`
    now[0] += 2
    assert registry.instances("cart") == ("http://127.0.0.1:8",)


def test_registry_file_changes_reach_the_gateway_without_a_restart(
    start_gateway, upstreams, fake_factory, tmp_path
):
    path = tmp_path / "registry.json"
    first, second = upstreams["product"], fake_factory("product-2")
    write_registry(path, {"product": [first.url]})
    gateway = start_gateway(
        registry_file=str(path), upstream_product="", upstream_auth="", registry_poll_seconds=0.05
    )
    assert gateway.get("/readyz").status_code == 503  # auth has no instance in the file
    assert gateway.get("/api/v1/products").json()["instance"] == "product"

    write_registry(path, {"product": [first.url, second.url], "auth": [upstreams["auth"].url]})
    wait_until(
        lambda: gateway.get("/api/v1/products").json()["instance"] == "product-2",
        timeout=10,
        message="second replica serving",
    )
    assert gateway.get("/readyz").status_code == 200

    write_registry(path, {"product": [second.url], "auth": [upstreams["auth"].url]})
    wait_until(
        lambda: (
            len(gateway.admin_get("/gateway/upstreams").json()["upstreams"]["product"]["instances"]) == 1
        ),
        timeout=10,
        message="first replica removed",
    )
    before = first.count()
    answers = [gateway.get("/api/v1/products").json()["instance"] for _ in range(10)]
    assert set(answers) == {"product-2"}
    assert first.count() == before


def test_dns_source_resolves_every_ipv4_address_of_localhost():
    source = DnsSource("localhost", 5002)
    assert "http://127.0.0.1:5002" in source()


def test_dns_source_re_resolves_after_its_refresh_and_keeps_the_last_answer_on_failure():
    now = [0.0]
    answers: list[object] = [["10.0.0.1"], ["10.0.0.2", "10.0.0.1"], OSError("no such host")]

    def resolve(host, port, *args):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer]

    source = DnsSource("product", 5002, refresh=5.0, resolve=resolve, clock=lambda: now[0])
    assert source() == ("http://10.0.0.1:5002",)
    now[0] = 4.0
    assert source() == ("http://10.0.0.1:5002",)  # cached
    now[0] = 6.0
    # Stale: the last answer now, the new one once the lookup behind it is done.
    wait_until(lambda: source() == ("http://10.0.0.1:5002", "http://10.0.0.2:5002"), timeout=5,
               message="the second answer")
    now[0] = 12.0
    source()
    wait_until(lambda: not answers, timeout=5, message="the failed lookup")
    assert source() == ("http://10.0.0.1:5002", "http://10.0.0.2:5002")  # lookup failed: kept


def test_a_slow_re_resolution_never_holds_a_caller():
    now, release, lookups = [0.0], threading.Event(), []

    def resolve(host, port, *args):
        lookups.append(now[0])
        if len(lookups) > 1:
            release.wait(10)  # a resolver that hangs
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    source = DnsSource("product", 5002, refresh=5.0, resolve=resolve, clock=lambda: now[0])
    assert source() == ("http://10.0.0.1:5002",)
    now[0] = 6.0
    held = threading.Thread(target=lambda: [source() for _ in range(100)])
    held.start()
    held.join(5)
    try:
        assert not held.is_alive()  # a hundred calls answered while the lookup hangs
        assert source() == ("http://10.0.0.1:5002",)
        wait_until(lambda: len(lookups) == 2, timeout=5, message="one re-resolution started")
        assert len(lookups) == 2  # one lookup, not one per caller
    finally:
        release.set()


def test_gateway_reaches_an_upstream_found_by_dns(start_gateway, upstreams):
    gateway = start_gateway(upstream_product=f"dns://localhost:{upstreams['product'].port}")
    response = gateway.get("/api/v1/products")
    assert response.status_code == 200
    upstream = gateway.admin_get("/gateway/upstreams").json()["upstreams"]["product"]
    assert upstream["discovery"] == f"dns://localhost:{upstreams['product'].port}"


def test_static_source_describes_itself():
    assert StaticSource(["http://a:1"]).describe() == "static"
