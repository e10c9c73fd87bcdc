"""`UpstreamError.uncertain`: whether any attempt of a call may have reached the server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.client import ResilientClient, UpstreamError, UpstreamPolicy
from tests.services.common.scripted import scripted_upstreams
from tests.support.processes import free_port, wait_until

# Each test runs with the client on the calling thread and on an event loop (conftest).
pytestmark = pytest.mark.usefixtures("both_drivers")

POLICY = UpstreamPolicy(read_timeout=0.3, failure_threshold=1, reset_timeout=30, retry_budget=1.0)


def failure_of(client: ResilientClient, method: str, path: str, **kwargs: object) -> UpstreamError:
    with pytest.raises(UpstreamError) as error:
        client.request("product", method, path, **kwargs)
    return error.value


def client_for(urls: object, policy: UpstreamPolicy = POLICY) -> ResilientClient:
    client = ResilientClient()
    client.add_upstream("product", urls, policy)
    return client


def test_nothing_sent_is_certain() -> None:
    refused = client_for([f"http://127.0.0.1:{free_port()}"])
    error = failure_of(refused, "POST", "/api/v1/reservations")
    assert (error.reason, error.uncertain) == ("connection_failed", False)
    # The refusal opened the breaker (one failure in a row): now nothing is even tried.
    error = failure_of(refused, "POST", "/api/v1/reservations")
    assert (error.reason, error.uncertain) == ("breaker_open", False)
    assert failure_of(client_for([]), "GET", "/x").reason == "no_instances"
    assert failure_of(client_for([]), "GET", "/x").uncertain is False


def test_a_full_bulkhead_is_certain() -> None:
    with scripted_upstreams(1) as (product,):
        client = client_for([product.url], UpstreamPolicy(read_timeout=10, max_concurrent=1))
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(client.request, "product", "GET", "/hold/a")
            wait_until(lambda: product.count("/hold") == 1, message="one call in flight")
            error = failure_of(client, "POST", "/api/v1/reservations")
            product.release("a")
            held.result(5)
        assert (error.reason, error.uncertain) == ("bulkhead_full", False)


@pytest.mark.parametrize(("path", "reason"), [("/hold/x", "timeout"), ("/status/500", "server_error"),
                                              ("/drop", "connection_failed")])
def test_anything_sent_is_uncertain(path: str, reason: str) -> None:
    with scripted_upstreams(1) as (product,):
        error = failure_of(client_for([product.url]), "POST", path)
        assert (error.reason, error.uncertain) == (reason, True)
        assert product.count(path) == 1


def test_a_timeout_then_a_refusal_is_still_uncertain() -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    with scripted_upstreams(1) as (held,):
        client = client_for([refused, held.url], UpstreamPolicy(read_timeout=0.3, retry_budget=1.0))
        # A reservation is safe to repeat (product answers the same one for the same ref): it
        # times out on the held replica (the hold may be made), then the retry is refused.
        error = failure_of(client, "POST", "/hold/reserve", idempotent=True)
        assert held.count("/hold/reserve") == 1
        assert error.reason == "connection_failed"  # the last attempt sent nothing...
        assert error.uncertain is True  # ...but the first may have done the work
