"""Admin endpoints and the two ways to run the gateway as a real process."""

from __future__ import annotations

import sys

import pytest
import requests

from tests.support.processes import RunningProcess, free_port


def test_healthz_and_readyz(start_gateway, upstreams):
    gateway = start_gateway()
    assert gateway.get("/healthz").json()["status"] == "ok"
    ready = gateway.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"auth", "product", "cart", "order"}


def test_readyz_is_503_while_an_upstream_has_no_instance(start_gateway, upstreams, tmp_path):
    gateway = start_gateway(upstream_cart="", registry_file=str(tmp_path / "missing.json"))
    ready = gateway.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["cart"]["ok"] is False


def test_upstreams_page_shows_replicas_breakers_and_bulkheads(start_gateway, upstreams):
    gateway = start_gateway()
    gateway.get("/api/v1/products")
    page = gateway.admin_get("/gateway/upstreams").json()
    product = page["upstreams"]["product"]
    assert product["bulkhead"]["limit"] == 32
    assert product["instances"][0]["url"] == upstreams["product"].url
    assert product["instances"][0]["breaker"] == "closed"
    assert "recent_errors" in product["instances"][0]
    assert product["discovery"] == "static"
    assert page["stale_cache"]["entries"] == 1


def test_metrics_cover_requests_latency_breakers_and_bulkheads(start_gateway, upstreams):
    gateway = start_gateway()
    gateway.get("/api/v1/products")
    text = gateway.admin_get("/metrics").text
    for name in (
        'breakwater_gateway_requests_total{group="products",method="GET",status="200",'
        'upstream="product"} 1.0',
        "breakwater_gateway_request_seconds_bucket",
        "breakwater_gateway_breaker_state",
        'breakwater_gateway_bulkhead_in_use{upstream="cart"} 0.0',
        "breakwater_gateway_replicas",
    ):
        assert name in text


def test_admin_endpoints_answer_json_errors(start_gateway, upstreams):
    gateway = start_gateway()
    response = gateway.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def _gateway_env(upstreams, key_files) -> dict[str, str]:
    env = {f"GATEWAY_UPSTREAM_{name.upper()}": fake.url for name, fake in upstreams.items()}
    env.update(
        GATEWAY_TOKEN_PUBLIC_KEY_FILE=str(key_files[1]),
        GATEWAY_RESILIENCE="on",
        GATEWAY_REGISTRY_FILE="",
        OTEL_TRACES_EXPORTER="none",
    )
    return env


@pytest.mark.integration
def test_python_dash_m_gateway_serves_the_shop_and_its_admin_port_apart(
        upstreams, key_files, tmp_path, bearer):
    port, admin_port = free_port(), free_port()
    process = RunningProcess(
        [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(port),
         "--admin-port", str(admin_port), "--threads", "8"],
        _gateway_env(upstreams, key_files),
        tmp_path / "gateway.log",
        f"http://127.0.0.1:{port}",
    )
    try:
        process.wait_healthy()
        with requests.Session() as session:  # keep-alive through Granian and the front
            answers = [session.get(process.url + "/api/v1/products", timeout=5) for _ in range(5)]
        assert {a.json()["instance"] for a in answers} == {"product"}
        assert answers[0].headers.get("Connection", "keep-alive").lower() != "close"
        assert requests.get(process.url + "/api/v1/cart", headers=bearer, timeout=5).status_code == 200
        assert requests.get(process.url + "/api/v1/cart", timeout=5).status_code == 401
        # The operational views answer on the admin port only.
        admin = f"http://127.0.0.1:{admin_port}"
        assert requests.get(admin + "/gateway/upstreams", timeout=5).json()["upstreams"]["product"]
        assert "breakwater_gateway_requests_total" in requests.get(admin + "/metrics", timeout=5).text
        for path in ("/gateway/upstreams", "/metrics"):
            hidden = requests.get(process.url + path, timeout=5)
            assert hidden.status_code == 404
            assert hidden.json()["error"]["code"] == "not_found"
    finally:
        process.stop()


def test_metrics_follow_prometheus_naming(start_gateway, upstreams):
    """Counters end in _total, breaker state is a labelled one-hot gauge, refusals count up."""
    from tests.support.metrics import naming_problems

    upstreams["product"].answer(500)
    gateway = start_gateway(breaker_failures=2, breaker_reset_seconds=30)
    for _ in range(3):
        gateway.get("/api/v1/products/x")
    text = gateway.admin_get("/metrics").text
    assert naming_problems(text) == []
    product = upstreams["product"].url
    for state, value in (("open", "1.0"), ("closed", "0.0"), ("half-open", "0.0")):
        assert (f'breakwater_gateway_breaker_state{{replica="{product}",state="{state}",'
                f'upstream="product"}} {value}') in text
    assert "# TYPE breakwater_gateway_bulkhead_rejected_total counter" in text
