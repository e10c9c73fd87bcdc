"""The resilient client's client spans (observability.http_client), recorded in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from observability import http_client
from services.common.client import ResilientClient, UpstreamPolicy
from tests.support.raw_server import RawServer, answer


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(http_client, "_tracer", provider.get_tracer("test"))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def upstream() -> Iterator[RawServer]:
    server = RawServer([answer(), answer("503 Service Unavailable"), answer()])
    yield server
    server.close()


def client_for(server: RawServer) -> ResilientClient:
    client = ResilientClient()
    client.add_upstream("product", [f"http://127.0.0.1:{server.port}"],
                        UpstreamPolicy(retry_budget=0.0, retry_budget_initial=0))
    return client


def test_an_attempt_is_one_client_span_and_the_only_traceparent_sent(spans, upstream) -> None:
    provider, exporter = spans
    client = client_for(upstream)
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with provider.get_tracer("test").start_as_current_span("GET /api/v1/cart") as parent:
        client.request("product", "GET", "/api/v1/products/42?x=1", headers={"Traceparent": caller})
    [span] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    base = f"http://127.0.0.1:{upstream.port}"
    assert span.name == "GET /api/v1/products/{id}"
    assert span.parent.span_id == parent.get_span_context().span_id
    assert dict(span.attributes) == {"http.method": "GET", "http.url": f"{base}/api/v1/products/42?x=1",
                                     "breakwater.instance": base, "http.status_code": 200}
    assert span.status.status_code == StatusCode.UNSET
    sent = upstream.requests[0].decode("latin-1").lower()
    context = span.get_span_context()
    expected = f"traceparent: 00-{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}-"
    assert sent.count("traceparent:") == 1 and expected in sent


def test_an_answer_from_400_up_marks_the_span_as_an_error(spans, upstream) -> None:
    _, exporter = spans
    client = client_for(upstream)
    client.request("product", "GET", "/a")
    client.request("product", "POST", "/b", raise_for_status=False)
    ok, failed = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert (ok.status.status_code, failed.status.status_code) == (StatusCode.UNSET, StatusCode.ERROR)
    assert failed.attributes["http.status_code"] == 503


def test_probes_and_suppressed_calls_get_no_span(spans, upstream) -> None:
    _, exporter = spans
    client = client_for(upstream)
    client.request("product", "GET", "/healthz")
    with suppress_http_instrumentation():
        client.request("product", "GET", "/api/v1/products", raise_for_status=False)
    assert exporter.get_finished_spans() == ()
    assert len(upstream.requests) == 2
