"""Reported defects of the resilient client, each reproduced against real loopback servers.

Every test here failed before its fix: replicas that never rejoined, a stale success closing a
half-open breaker, a 50 % failure rate that never tripped, a breaker view stuck on "open", keyed
POSTs sent twice, refused POSTs not sent elsewhere, four sends per request, dripping bodies that
outlived their budget.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.client import (
    ResilientClient,
    UpstreamError,
    UpstreamPolicy,
    UpstreamTimedOut,
    UpstreamUnavailable,
)
from tests.services.common.scripted import elapsed, scripted_upstreams
from tests.support.processes import free_port, wait_until

# Each test runs with the client on the calling thread and on an event loop (conftest).
pytestmark = pytest.mark.usefixtures("both_drivers")

# Short windows so a test runs in a second or two; failures trip by the consecutive count.
QUICK = UpstreamPolicy(connect_timeout=0.5, read_timeout=0.3, failure_threshold=2, reset_timeout=0.3,
                       eject_seconds=30, retry_budget=1.0)


def product_client(urls: list[str], policy: UpstreamPolicy = QUICK) -> ResilientClient:
    client = ResilientClient()
    client.add_upstream("product", urls, policy)
    return client


def instance_view(client: ResilientClient, url: str, service: str = "product") -> dict:
    instances = client.snapshot()["upstreams"][service]["instances"]
    return next(i for i in instances if i["url"] == url)


def test_a_hung_then_healed_replica_rejoins_while_the_other_serves() -> None:
    with scripted_upstreams(2) as (steady, flaky):
        client = product_client([steady.url, flaky.url])
        flaky.hang()
        wait_until(lambda: (client.request("product", "GET", "/catalog").status == 200
                            and instance_view(client, flaky.url)["breaker"] == "open"),
                   timeout=10, message="the hung replica's breaker opens")
        flaky.heal()
        served_before = flaky.count("/catalog")
        # Reads keep flowing to the steady replica; the healed one must get its trial and rejoin.
        wait_until(lambda: (client.request("product", "GET", "/catalog").status == 200
                            and flaky.count("/catalog") >= served_before + 5),
                   timeout=10, interval=0.01, message="the healed replica serves reads again")
        assert instance_view(client, flaky.url)["breaker"] == "closed"


def test_a_success_admitted_before_the_breaker_opened_cannot_close_it() -> None:
    with scripted_upstreams(1) as (cart,):
        client = ResilientClient()
        client.add_upstream("cart", [cart.url], UpstreamPolicy(read_timeout=10, failure_threshold=2,
                                                               reset_timeout=0.3))
        with ThreadPoolExecutor(2) as pool:
            early = pool.submit(client.request, "cart", "GET", "/hold/early")
            wait_until(lambda: cart.count("/hold/early") == 1, message="early call in flight")
            for _ in range(2):
                with pytest.raises(UpstreamUnavailable):
                    client.request("cart", "GET", "/status/500")
            assert instance_view(client, cart.url, "cart")["breaker"] == "open"
            wait_until(lambda: instance_view(client, cart.url, "cart")["breaker"] == "half-open",
                       timeout=5, message="reset timeout passed")
            trial = pool.submit(client.request, "cart", "GET", "/hold/trial")
            wait_until(lambda: cart.count("/hold/trial") == 1, message="trial call in flight")
            cart.release("early")
            assert early.result(5).status == 200
            # Only the trial decides: the early call's success says nothing about now.
            assert instance_view(client, cart.url, "cart")["breaker"] == "half-open"
            cart.release("trial")
            assert trial.result(5).status == 200
        assert instance_view(client, cart.url, "cart")["breaker"] == "closed"


def test_an_instance_failing_half_of_its_calls_trips() -> None:
    with scripted_upstreams(1) as (product,):
        client = product_client([product.url], UpstreamPolicy(failure_threshold=5, reset_timeout=30))
        outcomes = []
        for number in range(40):
            path = "/status/500" if number % 2 else "/ok"
            try:
                outcomes.append(client.request("product", "POST", path).status)
            except UpstreamUnavailable as error:
                outcomes.append(error.reason)
        assert "breaker_open" in outcomes
        assert instance_view(client, product.url)["breaker"] == "open"


def test_the_breaker_view_says_half_open_once_the_reset_timeout_passed_without_traffic() -> None:
    with scripted_upstreams(1) as (product,):
        client = product_client([product.url])
        product.fail()
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                client.request("product", "POST", "/x")
        assert instance_view(client, product.url)["breaker"] == "open"
        # No call arrives; the view alone must tell that a trial is due.
        wait_until(lambda: instance_view(client, product.url)["breaker"] == "half-open", timeout=5,
                   message="the view reports half-open after the reset timeout")


def test_an_idempotency_key_header_does_not_make_a_post_repeatable() -> None:
    with scripted_upstreams(1) as (cart,):
        client = ResilientClient()
        client.add_upstream("cart", [cart.url], UpstreamPolicy(retry_budget=1.0))
        assert client.request("cart", "POST", "/api/v1/cart/items", json={}).status == 200
        cart.drop_reused = True  # the pooled connection goes stale after the server read the POST
        error, _ = elapsed(lambda: client.request(
            "cart", "POST", "/api/v1/cart/items", json={}, headers={"Idempotency-Key": "k-1"}))
        assert isinstance(error, UpstreamError)
        assert cart.count("/api/v1/cart/items") == 2  # one first call, one keyed call: never resent


def test_a_refused_post_goes_to_another_replica() -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    with scripted_upstreams(1) as (alive,):
        client = product_client([refused, alive.url])
        answers = [client.request("product", "POST", "/api/v1/reservations", json={"n": n}).status
                   for n in range(4)]
        assert answers == [200] * 4
        assert alive.count("/api/v1/reservations") == 4  # each sent once, all to the live replica


def test_a_request_is_sent_at_most_twice_even_on_stale_connections() -> None:
    with scripted_upstreams(2) as (a, b):
        client = product_client([a.url, b.url])
        for server in (a, b):
            server.drop_reused = True
        client.request("product", "GET", "/warm")
        client.request("product", "GET", "/warm")  # one pooled connection to each replica
        with pytest.raises(UpstreamError):
            client.request("product", "GET", "/drop")
        assert a.count("/drop") + b.count("/drop") <= 2


def test_the_stale_connection_resend_spends_the_retry_budget() -> None:
    with scripted_upstreams(1) as (product,):
        client = product_client([product.url], UpstreamPolicy(retry_budget=0.0, retry_budget_initial=0))
        client.request("product", "GET", "/warm")
        product.drop_reused = True
        with pytest.raises(UpstreamError) as error:
            client.request("product", "GET", "/catalog")
        assert product.count("/catalog") == 1  # no budget: the stale connection was not resent
        assert error.value.uncertain  # the request reached the server


def test_a_dripping_body_is_cut_at_the_call_deadline() -> None:
    with scripted_upstreams(1) as (product,):
        client = product_client([product.url], UpstreamPolicy(read_timeout=0.5))
        # 15 bytes, one every 0.2 s: each socket read is well inside the 0.5 s read timeout.
        error, seconds = elapsed(lambda: client.request("product", "GET", "/drip/15/0.2"))
        assert isinstance(error, UpstreamTimedOut), error
        assert seconds < 1.5  # the whole answer is bounded, not each read (3 s before)
