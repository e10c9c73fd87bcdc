"""The console's HTTP surface: the page, its stream, the guarded controls, trace waterfalls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask

from console import ConsoleSettings, create_app
from gateway.metrics import GatewayMetrics
from tests.chaos.conftest import Api
from tests.console.test_traces import T1, span_line

ORIGIN = "http://127.0.0.1"


@pytest.fixture
def gateway(serve):
    """A stand-in for the gateway's admin views: one upstream view, real metrics text."""
    app = Flask("fake-gateway-admin")
    metrics = GatewayMetrics()
    metrics.observe("cart", "cart", "GET", 200, 0.01)
    app.add_url_rule("/metrics", "metrics", lambda: metrics.render().decode())
    app.add_url_rule("/gateway/upstreams", "upstreams", lambda: {"upstreams": {"cart": {
        "policy": {"reset_timeout": 5}, "bulkhead": {"limit": 16, "in_use": 0, "rejected": 0},
        "instances": [{"url": "http://127.0.0.1:9", "breaker": "closed"}]}}})
    return serve(app)


@pytest.fixture
def console(gateway, server, shop: Api, tmp_path: Path):
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "gateway-1.jsonl").write_text(
        span_line(T1, "1" * 16, None, "gateway", "GET /api/v1/cart", 0, 12))
    settings = ConsoleSettings(gateway_admin_url=gateway.url, toxiproxy_url=server.url,
                               traces_dir=str(tmp_path / "traces"), poll_seconds=0.2,
                               experiment_progress=str(tmp_path / "progress.json"))
    app = create_app(settings)
    yield app.test_client()
    app.extensions["console"]["hub"].stop()
    app.extensions["console"]["controls"].stop()


def token_of(client) -> str:
    page = client.get("/", base_url=ORIGIN).get_data(as_text=True)
    return re.search(r'name="console-token" content="([^"]+)"', page).group(1)


def post(client, path: str, body, **headers):
    return client.post(path, data=json.dumps(body), base_url=ORIGIN,
                       headers={"Content-Type": "application/json", **headers})


def test_the_page_loads_only_its_own_files(console) -> None:
    response = console.get("/", base_url=ORIGIN)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert token_of(console)
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/", "#", "data:")), url
    assert console.get("/static/vendor/uplot/uPlot.iife.min.js", base_url=ORIGIN).status_code == 200


def test_the_stream_sends_history_then_live_updates(console) -> None:
    response = console.get("/stream", base_url=ORIGIN)
    assert response.mimetype == "text/event-stream"
    chunks = response.response
    assert next(chunks).startswith(b"retry:")
    assert next(chunks).startswith(b"event: history")
    update = next(chunks).decode()
    response.close()
    assert update.startswith("event: update\ndata: ")
    data = json.loads(update.split("data: ", 1)[1])
    assert data["breakers"][0]["upstream"] == "cart"
    assert [p["name"] for p in data["faults"]["proxies"]] == ["cart", "product-1", "product-2"]
    assert data["sources"]["gateway"] == {"ok": True}
    assert data["traces"]["slowest"][0]["id"] == T1
    assert data["experiment"] is None


def test_controls_need_the_same_origin_and_the_pages_token(console, shop: Api) -> None:
    token = token_of(console)
    body = {"target": "cart", "kind": "latency", "ms": 200}
    refused = [
        post(console, "/api/faults", body, **{"X-Console-Token": token}),  # no origin at all
        post(console, "/api/faults", body, Origin="http://evil.example",
             **{"X-Console-Token": token}),
        post(console, "/api/faults", body, Origin=ORIGIN),  # no token
        post(console, "/api/faults", body, Origin=ORIGIN, **{"X-Console-Token": "1.2.3"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert [r.get_json()["error"]["code"] for r in refused] == [
        "cross_site_request", "cross_site_request", "bad_page_token", "bad_page_token"]
    assert shop.get("/proxies/cart/toxics").json() == []
    done = post(console, "/api/faults", body, Origin=ORIGIN, **{"X-Console-Token": token})
    assert done.status_code == 201, done.get_data(as_text=True)
    assert done.get_json()["proxies"] == ["cart"]
    assert shop.get("/proxies/cart/toxics/latency_downstream").json()["attributes"]["latency"] == 200
    cleared = post(console, "/api/faults/clear", {"target": "cart"},
                   **{"Sec-Fetch-Site": "same-origin", "X-Console-Token": token})
    assert cleared.status_code == 200 and shop.get("/proxies/cart/toxics").json() == []


def test_a_rebound_host_name_gets_nothing(console) -> None:
    assert console.get("/", base_url="http://rebound.example").status_code == 403
    assert console.get("/stream", base_url="http://rebound.example").status_code == 403


def test_bad_input_is_a_clear_4xx(console) -> None:
    token = token_of(console)
    headers = {"Origin": ORIGIN, "X-Console-Token": token}
    bad = post(console, "/api/faults", {"target": "cart", "kind": "latency"}, **headers)
    assert bad.status_code == 400 and "latency needs ms" in bad.get_json()["error"]["message"]
    unknown = post(console, "/api/faults", {"target": "basket", "kind": "down"}, **headers)
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "unknown_target"
    not_json = console.post("/api/faults", data="target=cart", base_url=ORIGIN, headers=headers,
                            content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 415
    broken = console.post("/api/faults", data="{", base_url=ORIGIN, headers=headers,
                          content_type="application/json")
    assert broken.status_code == 400
    assert console.get("/api/faults", base_url=ORIGIN).status_code == 405


def test_a_trace_opens_as_a_waterfall(console) -> None:
    shown = console.get(f"/api/traces/{T1[:8]}", base_url=ORIGIN)
    assert shown.status_code == 200 and shown.get_json()["spans"][0]["service"] == "gateway"
    assert console.get("/api/traces/zz-top", base_url=ORIGIN).status_code == 400
    missing = console.get("/api/traces/" + "f" * 32, base_url=ORIGIN)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "trace_not_found"


def test_metrics_export_the_active_faults(console, shop: Api) -> None:
    shop.post("/proxies/cart/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    shop.post("/proxies/product-2", json={"enabled": False})
    text = console.get("/metrics", base_url=ORIGIN).get_data(as_text=True)
    assert "breakwater_fault_proxy_reachable 1.0" in text
    assert 'breakwater_fault_proxy_toxics{proxy="cart",stream="downstream",type="latency"} 1.0' \
        in text
    assert 'breakwater_fault_proxy_enabled{proxy="product-2"} 0.0' in text
    assert 'breakwater_fault_proxy_enabled{proxy="cart"} 1.0' in text


def test_a_source_that_does_not_answer_is_named_not_hidden(server, tmp_path: Path) -> None:
    from chaos.faults import Faults
    from console.controls import FaultControls
    from console.watch import Watch
    from tests.support.processes import free_port

    settings = ConsoleSettings(gateway_admin_url=f"http://127.0.0.1:{free_port()}",
                               toxiproxy_url=server.url, traces_dir=str(tmp_path))
    watch = Watch(settings, FaultControls(Faults(server.url)))
    try:
        update = watch.read()
    finally:
        watch.close()
    assert update["breakers"] is None and update["traffic"] is None
    assert update["sources"]["gateway"]["ok"] is False
    assert "not answering" in update["sources"]["gateway"]["error"]
    assert update["sources"]["faults"] == {"ok": True}


def test_the_chart_library_is_the_vendored_npm_release_with_its_licence() -> None:
    vendor = Path(__file__).resolve().parents[2] / "console" / "static" / "vendor" / "uplot"
    declared = (vendor / "VERSION").read_text().split()[1]
    header = (vendor / "uPlot.iife.min.js").read_text()[:200]
    assert f"(v{declared})" in header, "refresh with `make vendor-uplot`"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"UPLOT_VERSION ?= {declared}" in makefile


def test_metrics_follow_prometheus_naming(console, shop: Api) -> None:
    from tests.support.metrics import naming_problems

    shop.post("/proxies/cart/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    assert naming_problems(console.get("/metrics", base_url=ORIGIN).get_data(as_text=True)) == []
