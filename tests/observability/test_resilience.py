"""Breakers, bulkheads, retries and fallbacks as events on spans; experiment spans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from observability.resilience import (
    TracingListener,
    experiment_span,
    mark_fallback,
    record_experiment_span,
)
from services.common.client import ResilientClient, UpstreamPolicy, UpstreamUnavailable
from tests.support.processes import free_port


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def healthy_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _events(exporter) -> dict[str, list[dict]]:
    (span,) = exporter.get_finished_spans()
    found: dict[str, list[dict]] = {}
    for event in span.events:
        found.setdefault(event.name, []).append(dict(event.attributes))
    return found


def test_a_retry_after_a_refused_instance_shows_on_the_span(memory, healthy_url: str) -> None:
    provider, exporter = memory
    refused = f"http://127.0.0.1:{free_port()}"
    client = ResilientClient(listeners=[TracingListener()])
    client.add_upstream("product", [healthy_url, refused])

    with provider.get_tracer("t").start_as_current_span("GET /api/v1/products"):
        answer = client.request("product", "GET", "/products")

    assert answer.status == 200 and answer.attempts == 2
    events = _events(exporter)
    assert events["breakwater.upstream.failure"][0]["breakwater.instance"] == refused
    assert events["breakwater.instance.ejected"][0] == {
        "breakwater.upstream": "product", "breakwater.instance": refused, "breakwater.seconds": 5.0}
    assert events["breakwater.retry"] == [{
        "breakwater.upstream": "product", "breakwater.instance": refused,
        "breakwater.reason": "connection_failed", "breakwater.retry.attempt": 1}]
    assert exporter.get_finished_spans()[0].attributes["breakwater.retry.count"] == 1


def test_a_breaker_opening_and_a_full_bulkhead_show_on_the_span(memory) -> None:
    provider, exporter = memory
    client = ResilientClient(listeners=[TracingListener()])
    client.add_upstream("cart", [f"http://127.0.0.1:{free_port()}"], UpstreamPolicy(failure_threshold=1))
    client.add_upstream("order", ["http://127.0.0.1:9"], UpstreamPolicy(max_concurrent=0))

    with provider.get_tracer("t").start_as_current_span("POST /checkout"):
        for service in ("cart", "order"):
            with pytest.raises(UpstreamUnavailable):
                client.request(service, "POST", "/x", json={})

    events = _events(exporter)
    (change,) = events["breakwater.breaker.state"]
    assert (change["breakwater.breaker.from"], change["breakwater.breaker.to"]) == ("closed", "open")
    assert change["breakwater.upstream"] == "cart"
    assert events["breakwater.bulkhead.rejected"] == [
        {"breakwater.upstream": "order", "breakwater.reason": "bulkhead_full"}]


def test_unknown_events_and_no_span_are_harmless(memory) -> None:
    provider, exporter = memory
    listener = TracingListener()
    listener.event("breaker_state_change", service="cart", old="open", new="half_open")  # no span

    with provider.get_tracer("t").start_as_current_span("GET"):
        listener.event("drained", service="cart", detail={"a": 1}, nothing=None)
        listener.event("chosen", service="product", instance="http://127.0.0.1:5012")

    (span,) = exporter.get_finished_spans()
    assert span.events[0].name == "breakwater.drained"
    assert dict(span.events[0].attributes) == {"breakwater.service": "cart",
                                               "breakwater.detail": "{'a': 1}"}
    assert span.attributes["breakwater.upstream.instance"] == "http://127.0.0.1:5012"


def test_a_stale_fallback_is_marked(memory) -> None:
    provider, exporter = memory

    with provider.get_tracer("t").start_as_current_span("GET /api/v1/products"):
        mark_fallback("stale_cache", age_seconds=12)

    (span,) = exporter.get_finished_spans()
    assert span.attributes["breakwater.fallback"] == "stale_cache"
    assert dict(span.events[0].attributes) == {"breakwater.fallback.kind": "stale_cache",
                                               "breakwater.age_seconds": 12}


def test_experiment_spans_mark_the_fault_window(memory) -> None:
    provider, exporter = memory

    trace_id = record_experiment_span("fault cart-down", 1000.0, 1030.5, {"toxic": "down"},
                                      tracer_provider=provider)
    times = iter([2000.0, 2001.0, 2003.0])
    with experiment_span("probe", {"target": "catalog"}, clock=lambda: next(times),
                         tracer_provider=provider):
        pass

    recorded, probe = exporter.get_finished_spans()
    assert f"{recorded.context.trace_id:032x}" == trace_id
    assert (recorded.start_time, recorded.end_time) == (1000 * 10**9, 1030_500_000_000)
    assert [(e.name, e.timestamp) for e in recorded.events] == [
        ("breakwater.fault.start", 1000 * 10**9), ("breakwater.fault.end", 1030_500_000_000)]
    assert recorded.attributes["breakwater.toxic"] == "down"
    assert [e.timestamp for e in probe.events] == [2001 * 10**9, 2003 * 10**9]
    assert probe.start_time == 2000 * 10**9


def test_without_tracing_an_experiment_span_is_not_recorded() -> None:
    from opentelemetry.trace import NoOpTracerProvider

    assert record_experiment_span("x", 1.0, 2.0, tracer_provider=NoOpTracerProvider()) is None
