"""What each route group declares: which requests may be sent twice, budgets, Retry-After, the view."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.routes import ROUTES, match_route, tuned_routes
from services.common.deadline import DEADLINE_HEADER
from services.common.settings import SettingsError
from tests.services.common.scripted import ScriptedUpstream, elapsed
from tests.support.processes import free_port, wait_until


@pytest.fixture
def scripted():
    made: list[ScriptedUpstream] = []

    def make(name: str) -> ScriptedUpstream:
        made.append(ScriptedUpstream(name))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.mark.parametrize("path", ["/api/v1/cart/items", "/api/v1/auth/login"])
def test_a_client_idempotency_key_never_makes_a_post_repeatable(start_gateway, scripted, bearer, path):
    upstream = scripted("target")
    service = "cart" if path.startswith("/api/v1/cart") else "auth"
    gateway = start_gateway(**{f"upstream_{service}": upstream.url})
    assert gateway.post(path, headers=bearer, json={}).status_code == 200  # a pooled connection
    upstream.drop_reused = True  # the next request on it is read, then the connection dies
    answer = gateway.post(path, headers={**bearer, "Idempotency-Key": "k-1"}, json={})
    assert answer.status_code == 503
    assert upstream.count(path) == 2  # the keyed POST reached the upstream once, and only once


def test_a_keyed_checkout_may_be_sent_again_because_order_implements_keys(start_gateway, scripted, bearer):
    order = scripted("order")
    gateway = start_gateway(upstream_order=order.url)
    assert gateway.get("/api/v1/orders", headers=bearer).status_code == 200
    order.drop_reused = True
    answer = gateway.post("/api/v1/orders", headers={**bearer, "Idempotency-Key": "k-2"}, json={})
    assert answer.status_code == 200  # resent on a fresh connection: order returns the same order
    assert order.count("/api/v1/orders") == 3
    unkeyed = gateway.post("/api/v1/orders", headers=bearer, json={})
    assert unkeyed.status_code == 503  # without a key, a checkout is sent once


def test_a_refused_write_goes_to_another_replica(start_gateway, scripted):
    alive = scripted("product-2")
    gateway = start_gateway(upstream_product=f"http://127.0.0.1:{free_port()},{alive.url}")
    answers = [gateway.post("/api/v1/products", json={"name": f"p{n}"}).status_code for n in range(4)]
    assert answers == [200] * 4
    assert alive.count("/api/v1/products") == 4


def test_a_hung_replica_rejoins_after_it_heals_while_reads_keep_succeeding(start_gateway, scripted):
    steady, flaky = scripted("product-1"), scripted("product-2")
    gateway = start_gateway(upstream_product=f"{steady.url},{flaky.url}", read_timeout=0.3,
                            breaker_failures=2, breaker_reset_seconds=0.5, retry_budget=1.0)
    flaky.hang()

    def flaky_state() -> str:
        page = gateway.admin_get("/gateway/upstreams").json()["upstreams"]["product"]["instances"]
        return next(i for i in page if i["url"] == flaky.url)["breaker"]

    wait_until(lambda: gateway.get("/api/v1/products").status_code == 200 and flaky_state() == "open",
               timeout=10, message="the hung replica's breaker opens")
    flaky.heal()
    before = flaky.count("/api/v1/products")
    wait_until(lambda: gateway.get("/api/v1/products").status_code == 200
               and flaky.count("/api/v1/products") >= before + 5,
               timeout=10, interval=0.01, message="the healed replica serves again")
    assert flaky_state() == "closed"


def test_every_fast_failure_says_when_to_come_back(start_gateway, upstreams):
    upstreams["product"].answer(503)  # a 503 of the upstream's own, without Retry-After
    gateway = start_gateway(breaker_failures=100)
    forwarded = gateway.get("/api/v2/products")
    assert forwarded.status_code == 503 and forwarded.headers["Retry-After"] == "1"


def test_an_open_breaker_asks_to_come_back_when_the_trial_is_due(start_gateway, upstreams):
    upstreams["product"].answer(500)
    gateway = start_gateway(breaker_failures=2, breaker_reset_seconds=30)
    for _ in range(2):
        gateway.post("/api/v1/products", json={})
    refused = gateway.post("/api/v1/products", json={})
    assert refused.json()["error"]["details"]["reason"] == "breaker_open"
    assert 25 <= int(refused.headers["Retry-After"]) <= 30


def test_a_spent_or_malformed_caller_budget_is_answered_at_once(start_gateway, upstreams):
    gateway = start_gateway()
    spent = gateway.get("/api/v1/products", headers={DEADLINE_HEADER: "0"})
    assert spent.status_code == 504 and spent.json()["error"]["code"] == "deadline_exceeded"
    bad = gateway.get("/api/v1/products", headers={DEADLINE_HEADER: "soon"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_deadline"
    assert upstreams["product"].count() == 0


def test_the_upstream_gets_the_route_budget_or_the_callers_if_shorter(start_gateway, upstreams, bearer):
    gateway = start_gateway()
    sent = gateway.post("/api/v1/orders", headers=bearer, json={}).json()["headers"][DEADLINE_HEADER]
    assert 7000 < int(sent) < 8000  # checkout's 8 s, less the margin to answer back
    sent = gateway.get("/api/v1/products", headers={DEADLINE_HEADER: "900"}).json()["headers"]
    assert 500 < int(sent[DEADLINE_HEADER]) < 900


def test_a_dripping_answer_is_cut_at_the_route_budget(start_gateway, scripted):
    product = scripted("product")
    gateway = start_gateway(upstream_product=product.url, read_timeout=5,
                            route_overrides="products.read_budget=0.5")
    # 15 bytes, one every 0.2 s: no single read comes near the 5 s read timeout.
    answer, seconds = elapsed(lambda: gateway.get("/api/v1/products?script=drip/15/0.2"))
    assert answer.status_code == 504 and answer.json()["error"]["code"] == "product_timeout"
    assert seconds < 2.0  # the 0.5 s budget, not the 3 s the drip takes


def test_the_upstream_view_shows_breaker_figures_and_route_groups(start_gateway, upstreams):
    upstreams["product"].answer(500)
    gateway = start_gateway(breaker_minimum_calls=4, breaker_failures=0, breaker_reset_seconds=30)
    for _ in range(4):
        gateway.post("/api/v1/products", json={})
    page = gateway.admin_get("/gateway/upstreams").json()
    (replica,) = page["upstreams"]["product"]["instances"]
    assert replica["breaker"] == "open"
    assert 25 < replica["next_trial_in"] <= 30
    assert set(replica) >= {"failure_rate", "slow_call_rate", "calls_in_window", "failures_in_a_row"}
    orders = next(r for r in page["routes"] if r["group"] == "orders")
    assert orders["write_budget"] == 8.0 and orders["repeatable_with_idempotency_key"] == ["POST"]
    assert orders["admission"] == 16 and orders["in_flight"] == 0
    assert page["upstreams"]["product"]["policy"]["minimum_calls"] == 4
    metrics = gateway.admin_get("/metrics").text
    assert "breakwater_gateway_breaker_failure_rate" in metrics
    assert "breakwater_gateway_breaker_next_trial_seconds" in metrics


def test_route_and_policy_overrides_apply_or_are_refused_clearly(key_files):
    tuned = tuned_routes("orders.write_budget=10, cart.admission=3")
    assert match_route("/api/v1/orders", tuned).write_budget == 10.0
    assert match_route("/api/v1/cart/items", tuned).admission == 3
    assert match_route("/api/v1/orders", ROUTES).write_budget == 8.0
    for bad in ("orders.timeout=3", "nowhere.admission=3", "cart.admission=lots", "cart.admission=0"):
        with pytest.raises(ValueError):
            tuned_routes(bad)
    base = {"token_public_key_file": str(key_files[1]), "registry_file": ""}
    with pytest.raises(SettingsError, match="GATEWAY_ROUTE_OVERRIDES"):
        create_app({**base, "route_overrides": "orders.timeout=3"})
    with pytest.raises(SettingsError, match="GATEWAY_POLICY_PRODUCT"):
        create_app({**base, "policy_product": "window=sliding"})


def test_one_upstream_gets_its_own_breaker_settings(start_gateway, upstreams):
    gateway = start_gateway(policy_product="minimum_calls=3,slow_call_seconds=0.5")
    policies = {name: u["policy"] for name, u in gateway.admin_get("/gateway/upstreams").json()["upstreams"].items()}
    assert (policies["product"]["minimum_calls"], policies["product"]["slow_call_seconds"]) == (3, 0.5)
    assert policies["cart"]["minimum_calls"] == 10
