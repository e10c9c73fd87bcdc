"""The resilient client against real HTTP servers on loopback."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.client import (
    ResilientClient,
    UpstreamPolicy,
    UpstreamTimedOut,
    UpstreamUnavailable,
)
from tests.support.processes import free_port, wait_until
from tests.support.upstreams import fake_upstreams, timed

# Each test runs with the client on the calling thread and on an event loop (conftest).
pytestmark = pytest.mark.usefixtures("both_drivers")

FAST = UpstreamPolicy(connect_timeout=0.5, read_timeout=0.5, failure_threshold=2, reset_timeout=0.3,
                      eject_seconds=30)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def event(self, name: str, **fields: object) -> None:
        self.events.append((name, fields))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def make_client(urls: list[str], policy: UpstreamPolicy = FAST, **kwargs: object) -> ResilientClient:
    client = ResilientClient(**kwargs)
    client.add_upstream("product", urls, policy)
    return client


def test_requests_are_balanced_across_instances() -> None:
    with fake_upstreams(2) as (a, b):
        client = make_client([a.url, b.url])
        for _ in range(10):
            assert client.request("product", "GET", "/api/v1/products").status == 200
        assert a.hit_count() == 5 and b.hit_count() == 5


def test_dead_instance_is_ejected_and_reads_still_succeed() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with fake_upstreams(1) as (alive,):
        recorder = Recorder()
        client = make_client([dead, alive.url], listeners=[recorder])
        statuses = [client.request("product", "GET", "/x").status for _ in range(6)]
        assert statuses == [200] * 6
        snapshot = client.snapshot()["upstreams"]["product"]["instances"]
        dead_state = next(i for i in snapshot if i["url"] == dead)
        assert dead_state["ejected_for"] > 0
        assert dead_state["failures"] == 1  # ejected after the first refusal, never tried again
        assert "ejected" in recorder.names() and "retried" in recorder.names()


def test_post_is_never_retried_but_get_is_retried_on_another_instance() -> None:
    with fake_upstreams(2) as (a, b):
        a.mode = b.mode = "error"
        client = make_client([a.url, b.url])
        with pytest.raises(UpstreamUnavailable) as post_error:
            client.request("product", "POST", "/api/v1/reservations", json={"x": 1})
        assert a.hit_count() + b.hit_count() == 1
        assert post_error.value.status == 503 and post_error.value.code == "product_unavailable"
        with pytest.raises(UpstreamUnavailable):
            client.request("product", "GET", "/api/v1/products/1")
        gets = [(server.name, method) for server in (a, b) for method, _ in server.hits if method == "GET"]
        assert sorted(gets) == [("fake-0", "GET"), ("fake-1", "GET")]  # once more, on the other one


def test_breaker_opens_fails_fast_without_calling_and_closes_after_a_good_trial() -> None:
    with fake_upstreams(1) as (cart,):
        recorder = Recorder()
        client = ResilientClient(listeners=[recorder])
        client.add_upstream("cart", [cart.url], FAST)
        cart.mode = "error"
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                client.request("cart", "POST", "/api/v1/cart/items", json={})
        hits_when_opened = cart.hit_count()
        error, elapsed = timed(lambda: client.request("cart", "GET", "/api/v1/cart"))
        assert isinstance(error, UpstreamUnavailable) and error.reason == "breaker_open"
        assert error.headers["X-Breakwater-Failed-Dependency"] == "cart"
        assert cart.hit_count() == hits_when_opened  # open: nothing reached cart
        assert elapsed < FAST.read_timeout / 2
        cart.mode = "ok"
        wait_until(lambda: client.request("cart", "GET", "/api/v1/cart").status == 200, timeout=5,
                   interval=0.05, message="half-open trial succeeds")
        assert client.snapshot()["upstreams"]["cart"]["instances"][0]["breaker"] == "closed"
        transitions = [(f["old"], f["new"]) for n, f in recorder.events if n == "breaker_state_change"]
        assert ("closed", "open") in transitions and ("half-open", "closed") in transitions


def test_read_timeout_is_a_504_with_the_service_named() -> None:
    with fake_upstreams(1) as (cart,):
        cart.mode, cart.delay = "slow", 5
        client = ResilientClient()
        client.add_upstream("cart", [cart.url], FAST)
        error, elapsed = timed(lambda: client.request("cart", "POST", "/api/v1/cart/items", json={}))
        assert isinstance(error, UpstreamTimedOut)
        assert (error.status, error.code, error.details["reason"]) == (504, "cart_timeout", "timeout")
        assert elapsed < 3  # bounded by the read timeout, not by the upstream's 5 s


def test_full_bulkhead_rejects_at_once_instead_of_queueing() -> None:
    with fake_upstreams(1) as (cart,):
        cart.mode, cart.delay = "slow", 10
        client = ResilientClient()
        client.add_upstream("cart", [cart.url], UpstreamPolicy(read_timeout=10, max_concurrent=2))
        with ThreadPoolExecutor(2) as pool:
            hanging = [pool.submit(client.request, "cart", "GET", "/api/v1/cart") for _ in range(2)]
            wait_until(lambda: cart.hit_count() == 2, message="two calls in flight")
            error, elapsed = timed(lambda: client.request("cart", "GET", "/api/v1/cart"))
            assert isinstance(error, UpstreamUnavailable) and error.reason == "bulkhead_full"
            assert cart.hit_count() == 2 and elapsed < 1
            cart.release.set()
            assert [f.result().status for f in hanging] == [200, 200]


def test_dependency_failure_of_the_upstream_does_not_open_its_breaker() -> None:
    with fake_upstreams(1) as (order,):
        order.mode = "dependency_error"
        client = ResilientClient()
        client.add_upstream("order", [order.url], FAST)
        for _ in range(5):
            response = client.request("order", "POST", "/api/v1/orders", raise_for_status=False)
            assert response.status == 503
        assert client.snapshot()["upstreams"]["order"]["instances"][0]["breaker"] == "closed"


def test_retry_budget_limits_retries_under_sustained_failure() -> None:
    with fake_upstreams(2) as (a, b):
        a.mode = b.mode = "error"
        # Breakers that never open here: a 60 s window needing more calls than the test makes.
        policy = UpstreamPolicy(failure_threshold=0, window="time", window_size=60, minimum_calls=1000,
                                retry_budget=0.1)
        client = make_client([a.url, b.url], policy)
        for _ in range(40):
            client.request("product", "GET", "/p", raise_for_status=False)
        retries = client.snapshot()["upstreams"]["product"]["counts"]["retries"]
        assert 3 <= retries <= 3 + 40 * 0.1 + 1  # the initial allowance plus 10 % of requests


def test_naive_mode_has_no_bulkhead_and_no_breaker() -> None:
    with fake_upstreams(1) as (cart,):
        cart.mode = "error"
        client = ResilientClient(resilience=False)
        client.add_upstream("cart", [cart.url], UpstreamPolicy(max_concurrent=1, failure_threshold=1))
        for _ in range(5):
            with pytest.raises(UpstreamUnavailable) as error:
                client.request("cart", "GET", "/api/v1/cart")
            assert error.value.reason == "server_error"
        assert cart.hit_count() == 5  # every call went out: nothing protected the upstream


def test_instances_follow_a_dynamic_source() -> None:
    with fake_upstreams(2) as (a, b):
        current = [a.url]
        client = make_client([])
        client.add_upstream("product", lambda: list(current), FAST)
        client.request("product", "GET", "/x")
        current.append(b.url)
        for _ in range(4):
            client.request("product", "GET", "/x")
        assert b.hit_count() >= 2


def test_unknown_upstream_is_a_clear_503() -> None:
    with pytest.raises(UpstreamUnavailable) as error:
        ResilientClient().request("nowhere", "GET", "/")
    assert error.value.code == "nowhere_unavailable" and "no upstream named" in error.value.message


def test_concurrent_calls_keep_counts_consistent() -> None:
    with fake_upstreams(2) as (a, b):
        client = make_client([a.url, b.url], UpstreamPolicy(max_concurrent=64))
        barrier = threading.Barrier(8)

        def call() -> int:
            barrier.wait()
            return sum(client.request("product", "GET", "/x").status == 200 for _ in range(25))

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(lambda _: call(), range(8))) == 200
        snapshot = client.snapshot()["upstreams"]["product"]
        assert snapshot["bulkhead"]["in_use"] == 0
        assert all(i["outstanding"] == 0 for i in snapshot["instances"])
        assert a.hit_count() + b.hit_count() == 200


def test_breaker_does_not_serialise_concurrent_calls() -> None:
    # pybreaker's own call() holds a lock for the whole call; ours must let calls overlap.
    with fake_upstreams(1) as (cart,):
        cart.mode, cart.delay = "slow", 10
        client = ResilientClient()
        client.add_upstream("cart", [cart.url], UpstreamPolicy(read_timeout=10, max_concurrent=8))
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(client.request, "cart", "GET", "/api/v1/cart") for _ in range(4)]
            wait_until(lambda: cart.hit_count() == 4, message="four calls in flight at once")
            cart.release.set()
            assert [c.result().status for c in calls] == [200] * 4


def test_half_open_lets_a_single_trial_through() -> None:
    with fake_upstreams(1) as (cart,):
        client = ResilientClient()
        client.add_upstream("cart", [cart.url], FAST)
        cart.mode = "error"
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                client.request("cart", "POST", "/x")
        breaker = client.upstreams["cart"].instances()[0].breaker
        wait_until(breaker.admits, timeout=5, message="open window elapsed")
        cart.mode, cart.delay = "slow", 10
        hits = cart.hit_count()
        with ThreadPoolExecutor(1) as pool:
            trial = pool.submit(client.request, "cart", "GET", "/x", timeout=(0.5, 10))
            wait_until(lambda: cart.hit_count() == hits + 1, message="trial call in flight")
            error, _ = timed(lambda: client.request("cart", "GET", "/x"))
            assert isinstance(error, UpstreamUnavailable) and error.reason == "breaker_open"
            cart.release.set()
            assert trial.result().status == 200
        assert breaker.state == "closed"
