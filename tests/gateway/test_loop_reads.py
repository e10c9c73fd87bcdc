"""Public reads answered on the front's event loop, everything else on its worker threads.

The gateway's front (Granian, RSGI) proxies a bodiless GET or HEAD of a public route with the
resilient client's event-loop exchange; a protected route, a write and a naive gateway take a
worker thread as before. These tests hold every worker thread with hung cart calls and see
which requests still get through, and check that a read on the loop keeps the client's
semantics (deadline, breaker, retry) and the trace.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from tests.gateway.fakes import FakeUpstream, RunningGateway
from tests.support.processes import wait_until

THREADS = 2


@contextmanager
def every_thread_held(gateway: RunningGateway, cart: FakeUpstream,
                      bearer: dict[str, str]) -> Iterator[None]:
    """Both worker threads waiting on a hung cart, until the block ends."""
    cart.answer(hang=True)
    callers = [threading.Thread(target=_quietly, args=(gateway, bearer), daemon=True)
               for _ in range(THREADS)]
    for caller in callers:
        caller.start()
    wait_until(lambda: cart.in_flight == THREADS, timeout=10, message="every worker thread held")
    try:
        yield
    finally:
        cart.answer()  # releases the hung calls
        for caller in callers:
            caller.join(10)


def _quietly(gateway: RunningGateway, bearer: dict[str, str]) -> None:
    with contextlib.suppress(requests.RequestException):  # its answer is not the point
        gateway.get("/api/v1/cart", headers=bearer, timeout=30)


def test_public_reads_are_answered_while_every_worker_thread_is_held(start_gateway, upstreams,
                                                                      bearer):
    gateway = start_gateway(threads=THREADS, read_timeout=20.0, route_overrides="cart.read_budget=25")
    with every_thread_held(gateway, upstreams["cart"], bearer):
        reads = [gateway.get(f"/api/v1/products/{n}", timeout=5) for n in range(5)]
        head = gateway.request("HEAD", "/api/v1/products/1", timeout=5)
        assert [r.status_code for r in reads] == [200] * 5
        assert [r.json()["path"] for r in reads] == [f"/api/v1/products/{n}" for n in range(5)]
        assert all(r.headers["X-Request-Id"] for r in reads)
        assert head.status_code == 200 and head.content == b""


def test_protected_reads_and_writes_wait_for_a_worker_thread(start_gateway, upstreams, bearer):
    gateway = start_gateway(threads=THREADS, read_timeout=20.0, route_overrides="cart.read_budget=25")
    with every_thread_held(gateway, upstreams["cart"], bearer):
        for call in (lambda: gateway.get("/api/v1/orders", headers=bearer, timeout=1),
                     lambda: gateway.post("/api/v1/auth/login", json={"a": 1}, timeout=1),
                     lambda: gateway.get("/api/v1/products/1", data=b"x", timeout=1)):
            with pytest.raises(requests.Timeout):
                call()  # queued behind the held threads


@pytest.mark.parametrize("setting", [{"resilience": False}, {"loop_reads": False}],
                         ids=["naive gateway", "GATEWAY_LOOP_READS=off"])
def test_without_loop_reads_reads_wait_for_a_thread(start_gateway, upstreams, bearer, setting):
    gateway = start_gateway(threads=THREADS, **setting)
    with every_thread_held(gateway, upstreams["cart"], bearer), pytest.raises(requests.Timeout):
        gateway.get("/api/v1/products/1", timeout=1)


def test_a_hung_read_on_the_loop_ends_at_its_deadline_and_counts_against_the_replica(
        start_gateway, upstreams):
    gateway = start_gateway(read_timeout=0.3, breaker_failures=2, breaker_reset_seconds=30)
    upstreams["product"].answer(hang=True)
    started = time.monotonic()
    first = gateway.get("/api/v1/products/1")
    took = time.monotonic() - started
    assert first.status_code == 504 and first.json()["error"]["code"] == "product_timeout"
    assert took < 2.0  # the read timeout and its one retry budget, not the fake's 15 s hang
    gateway.get("/api/v1/products/1")
    wait_until(lambda: gateway.admin_get("/gateway/upstreams").json()["upstreams"]["product"]
               ["instances"][0]["breaker"] == "open", timeout=5, message="product's breaker open")
    refused = gateway.get("/api/v1/products/1")
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.json()["error"]["details"]["reason"] == "breaker_open"


def test_a_read_on_the_loop_continues_the_callers_trace(start_gateway, upstreams):
    gateway = start_gateway()
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    host, port = gateway.url.removeprefix("http://").split(":")
    # http.client, not requests: this process's urllib3 is traced and would start its own span.
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", "/api/v1/products/7",
                       headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    assert answer.status == 200 and answer.getheader("X-Trace-Id") == trace_id
    version, seen_trace, parent, flags = upstreams["product"].seen[-1].headers["Traceparent"].split("-")
    assert (version, seen_trace, flags) == ("00", trace_id, "01")
    assert parent != "b7ad6b7169203331"  # the gateway's client span is the upstream's parent
    returned = answer.getheader("traceparent").split("-")
    assert returned[1] == trace_id and returned[2] not in (parent, "b7ad6b7169203331")
