"""Balancing, ejection, breakers, bulkheads, retries and fallbacks, through the real gateway."""

from __future__ import annotations

import json
import threading
from collections import Counter

from tests.gateway.fakes import timed
from tests.support.processes import wait_until


def replicas(gateway, service: str) -> list[dict]:
    return gateway.admin_get("/gateway/upstreams").json()["upstreams"][service]["instances"]


def test_reads_are_balanced_across_replicas(start_gateway, upstreams, fake_factory):
    second = fake_factory("product-2")
    gateway = start_gateway(upstream_product=f"{upstreams['product'].url},{second.url}")
    served = Counter(gateway.get("/api/v1/products").json()["instance"] for _ in range(40))
    assert set(served) == {"product", "product-2"}
    assert min(served.values()) >= 10, served


def test_a_dead_replica_is_ejected_while_the_others_serve_every_request(
    start_gateway, upstreams, fake_factory
):
    others = [fake_factory("product-2"), fake_factory("product-3")]
    dead = upstreams["product"]
    gateway = start_gateway(
        upstream_product=",".join([dead.url] + [f.url for f in others]),
        eject_seconds=30,
        retry_budget=1.0,
    )
    dead.stop()
    reads = [gateway.get(f"/api/v1/products/{i}") for i in range(30)]
    assert [r.status_code for r in reads] == [200] * 30
    writes = [gateway.post("/api/v1/products", json={"name": f"p{i}"}) for i in range(10)]
    assert [w.status_code for w in writes] == [200] * 10
    state = {i["url"]: i for i in replicas(gateway, "product")}
    assert state[dead.url]["ejected_for"] > 0
    assert "breakwater_gateway_ejections_total" in gateway.admin_get("/metrics").text


def test_breaker_opens_fails_fast_and_closes_after_a_good_trial(start_gateway, upstreams):
    product = upstreams["product"]
    product.answer(500)
    gateway = start_gateway(breaker_failures=3, breaker_reset_seconds=0.5)
    assert [gateway.get("/api/v1/products/x").status_code for _ in range(3)] == [500] * 3
    assert replicas(gateway, "product")[0]["breaker"] == "open"

    seen_before = product.count()
    open_answers = [timed(lambda: gateway.get("/api/v1/products/x")) for _ in range(5)]
    assert {r.status_code for r, _ in open_answers} == {503}
    error = open_answers[0][0].json()["error"]
    assert (error["code"], error["details"]["reason"]) == ("product_unavailable", "breaker_open")
    assert open_answers[0][0].headers["Retry-After"]
    assert product.count() == seen_before  # nothing reached the replica while open
    # Fail fast: the client refuses without a call (how fast is `make bench`'s failfast figure).
    assert all(_client_call(gateway) == 503 for _ in range(5))
    assert product.count() == seen_before

    product.answer(200)
    wait_until(
        lambda: gateway.get("/api/v1/products/x").status_code == 200,
        timeout=10,
        interval=0.05,
        message="half-open trial succeeds",
    )
    assert replicas(gateway, "product")[0]["breaker"] == "closed"
    metrics = gateway.admin_get("/metrics").text
    assert 'to="open"' in metrics and 'to="closed"' in metrics
    assert 'breakwater_gateway_breaker_state{replica="' in metrics


def _client_call(gateway) -> int:
    from services.common.client import UpstreamUnavailable

    try:
        gateway.app.client.request("product", "GET", "/api/v1/products/x")
    except UpstreamUnavailable as error:
        return error.status
    return 200


def test_a_failed_half_open_trial_opens_the_breaker_again(start_gateway, upstreams):
    product = upstreams["product"]
    product.answer(500)
    gateway = start_gateway(breaker_failures=2, breaker_reset_seconds=0.3)
    for _ in range(2):
        gateway.get("/api/v1/products/y")
    assert product.count() == 2
    wait_until(
        lambda: gateway.get("/api/v1/products/y").status_code == 500,
        timeout=10,
        interval=0.05,
        message="half-open trial reaches the replica",
    )
    assert product.count() == 3
    assert replicas(gateway, "product")[0]["breaker"] == "open"


def test_a_full_bulkhead_rejects_at_once(start_gateway, upstreams, bearer):
    cart = upstreams["cart"]
    cart.answer(hang=True)
    gateway = start_gateway(bulkhead_cart=2, read_timeout=10)
    hung = [
        threading.Thread(target=gateway.get, args=("/api/v1/cart",), kwargs={"headers": bearer})
        for _ in range(2)
    ]
    for thread in hung:
        thread.start()
    wait_until(lambda: cart.in_flight == 2, timeout=10, message="two cart calls in flight")
    response, seconds = timed(lambda: gateway.get("/api/v1/cart", headers=bearer))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cart_unavailable"
    assert response.json()["error"]["details"]["reason"] == "bulkhead_full"
    assert response.headers["Retry-After"]
    assert seconds < 5.0  # refused at once, not after the 10 s read timeout of the hung calls
    assert cart.count() == 2
    assert gateway.admin_get("/gateway/upstreams").json()["upstreams"]["cart"]["bulkhead"]["in_use"] == 2
    cart.release.set()
    for thread in hung:
        thread.join(10)


def test_reads_are_retried_on_another_replica_but_writes_never_twice(
    start_gateway, upstreams, fake_factory
):
    failing, healthy = upstreams["product"], fake_factory("product-2")
    failing.answer(500)
    gateway = start_gateway(
        upstream_product=f"{failing.url},{healthy.url}", breaker_failures=100, retry_budget=1.0
    )
    reads = [gateway.get(f"/api/v1/products/{i}") for i in range(6)]
    assert [r.status_code for r in reads] == [200] * 6
    assert failing.count() >= 1  # some reads went there first and were retried
    writes = [gateway.post("/api/v1/products", json={"n": i}) for i in range(8)]
    posts = [s for f in (failing, healthy) for s in f.seen if s.method == "POST"]
    assert len(posts) == 8  # every POST sent exactly once
    assert Counter(w.status_code for w in writes) == Counter(
        {
            500: sum(1 for s in failing.seen if s.method == "POST"),
            200: sum(1 for s in healthy.seen if s.method == "POST"),
        }
    )


def test_catalog_reads_fall_back_to_the_last_good_response(start_gateway, upstreams):
    product = upstreams["product"]
    product.answer(body=b'{"items": [1, 2, 3]}', headers=[("ETag", '"v1"')])
    gateway = start_gateway()
    fresh = gateway.get("/api/v1/products?page=1")
    assert fresh.status_code == 200 and "X-Breakwater-Stale" not in fresh.headers

    product.answer(503)
    stale = gateway.get("/api/v1/products?page=1")
    assert stale.status_code == 200
    assert stale.content == b'{"items": [1, 2, 3]}'
    assert stale.headers["X-Breakwater-Stale"] == "1"
    assert stale.headers["Warning"] == '110 - "Response is stale"'
    assert stale.headers["ETag"] == '"v1"'

    product.stop()
    assert gateway.get("/api/v1/products?page=1").headers["X-Breakwater-Stale"] == "1"
    never_cached = gateway.get("/api/v1/products?page=2")
    assert never_cached.status_code == 503
    assert never_cached.json()["error"]["code"] == "product_unavailable"
    assert 'breakwater_gateway_fallbacks_total{group="products",upstream="product"} 2.0' in (
        gateway.admin_get("/metrics").text
    )


def test_no_stale_fallback_with_resilience_off(start_gateway, upstreams):
    gateway = start_gateway(resilience=False)
    assert gateway.get("/api/v2/products").status_code == 200
    upstreams["product"].answer(503)
    response = gateway.get("/api/v2/products")
    assert response.status_code == 503
    assert "X-Breakwater-Stale" not in response.headers


def test_cart_down_is_503_cart_unavailable_with_retry_after(start_gateway, upstreams, bearer):
    upstreams["cart"].stop()
    gateway = start_gateway()
    response = gateway.get("/api/v1/cart", headers=bearer)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cart_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert gateway.get("/api/v1/products").status_code == 200


def test_checkout_passes_orders_own_503_through_without_blaming_order(
    start_gateway, upstreams, bearer
):
    problem = {"error": {"code": "cart_unavailable", "message": "cart is down", "details": {}}}
    upstreams["order"].answer(
        503,
        body=json.dumps(problem).encode(),
        headers=[("X-Breakwater-Failed-Dependency", "cart"), ("Retry-After", "5")],
    )
    gateway = start_gateway(breaker_failures=3)
    answers = [
        gateway.post("/api/v1/orders", headers={**bearer, "Idempotency-Key": "k1"}, json={})
        for _ in range(6)
    ]
    assert {a.status_code for a in answers} == {503}
    assert answers[-1].json() == problem
    assert answers[-1].headers["Retry-After"] == "5"
    assert upstreams["order"].count() == 6  # order's breaker never opened
    assert replicas(gateway, "order")[0]["breaker"] == "closed"


def test_slow_upstream_times_out_with_504(start_gateway, upstreams, bearer):
    upstreams["order"].answer(hang=True)
    gateway = start_gateway(read_timeout=0.3)
    response, seconds = timed(lambda: gateway.get("/api/v1/orders", headers=bearer))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "order_timeout"
    assert seconds < 3


def test_checkout_gets_the_longer_timeout(start_gateway, upstreams, bearer):
    order = upstreams["order"]
    order.answer(hang=True)
    gateway = start_gateway(read_timeout=0.2, route_overrides="orders.write_budget=5")
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.update(r=gateway.post("/api/v1/orders", headers=bearer, json={}))
    )
    thread.start()
    wait_until(lambda: order.in_flight == 1, timeout=10, message="checkout in flight")
    thread.join(1.0)
    assert thread.is_alive()  # still waiting well past the 0.2 s read timeout
    order.release.set()
    thread.join(10)
    assert result["r"].status_code == 200
