"""The isolation property: a hanging cart does not slow catalog reads — unless resilience is off.

Both runs use a gateway with 8 worker threads and 10 clients calling a cart that never
answers. With resilience on, the cart bulkhead (3) keeps 5 workers free for everybody else;
with it off, the hung cart calls take every worker and product reads stall.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from tests.gateway.fakes import FakeUpstream, RunningGateway
from tests.support.processes import wait_until

WORKERS, CART_BULKHEAD, CART_CLIENTS = 8, 3, 10


@contextmanager
def hanging_cart(
    gateway: RunningGateway, cart: FakeUpstream, headers: dict[str, str]
) -> Iterator[Counter]:
    """A cart that never answers, with CART_CLIENTS concurrent callers, while the block runs."""
    cart.answer(hang=True)
    stop, statuses = threading.Event(), Counter()

    def caller() -> None:
        while not stop.is_set():
            try:
                statuses[gateway.get("/api/v1/cart", headers=headers, timeout=20).status_code] += 1
            except requests.RequestException:
                statuses["error"] += 1
            stop.wait(0.02)  # pacing between calls, so refusals do not become a busy loop

    callers = [threading.Thread(target=caller, daemon=True) for _ in range(CART_CLIENTS)]
    for thread in callers:
        thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        cart.release.set()
        for thread in callers:
            thread.join(20)


def product_reads(gateway: RunningGateway, count: int, timeout: float) -> list[float | None]:
    """Latency of `count` sequential catalog reads (None for a failed or timed-out one)."""
    latencies: list[float | None] = []
    for number in range(count):
        started = time.perf_counter()
        try:
            response = gateway.get(f"/api/v1/products/{number}", timeout=timeout)
            ok = response.status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.perf_counter() - started if ok else None)
    return latencies


def test_product_reads_stay_fast_while_cart_hangs(start_gateway, upstreams, bearer):
    cart = upstreams["cart"]
    # A read timeout and a cart budget longer than the test: a call the gateway gave up on
    # would still count as in flight at the fake cart, and the bulkhead would admit a new one
    # beside it (on a busy machine the reads below can outlast the default cart budget).
    gateway = start_gateway(threads=WORKERS, bulkhead_cart=CART_BULKHEAD, read_timeout=15.0,
                            route_overrides="cart.read_budget=30")
    with hanging_cart(gateway, cart, bearer) as cart_statuses:
        wait_until(
            lambda: cart.in_flight == CART_BULKHEAD, timeout=10, message="cart bulkhead full"
        )
        latencies = product_reads(gateway, 30, timeout=3.0)
        assert cart.in_flight <= CART_BULKHEAD
    assert None not in latencies, latencies
    # No read waited on the hanging cart (whose calls would take the 15 s read timeout); how fast
    # the reads are is measured by `make bench` (isolation), not asserted here.
    assert max(latencies) < 3.0
    assert cart_statuses[503] > 0  # the bulkhead (then the breaker) refused the excess at once


def test_without_resilience_a_hanging_cart_starves_product_reads(start_gateway, upstreams, bearer):
    cart = upstreams["cart"]
    gateway = start_gateway(threads=WORKERS, bulkhead_cart=CART_BULKHEAD, resilience=False)
    with hanging_cart(gateway, cart, bearer):
        wait_until(lambda: cart.in_flight == WORKERS, timeout=10, message="every worker on cart")
        latencies = product_reads(gateway, 3, timeout=1.0)
    assert latencies == [None, None, None]
