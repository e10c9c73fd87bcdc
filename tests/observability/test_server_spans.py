"""Lean server spans: what a sampled request's span holds, what an unsampled one gets instead,
parents from the request's headers, errors, and when the span ends."""

from __future__ import annotations

import pytest
from flask import Flask, abort, jsonify
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from observability.server_spans import ServerSpans
from observability.tracing import TracedWSGI, instrument_app

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def _provider(sampler=ALWAYS_ON) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}), sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _shop(provider: TracerProvider) -> Flask:
    app = Flask("product")

    @app.get("/api/v1/products/<id_or_slug>")
    def read(id_or_slug: str):
        if id_or_slug == "broken":
            raise RuntimeError("the catalog table is unreadable")
        if id_or_slug == "missing":
            abort(404)
        return jsonify(slug=id_or_slug)

    return instrument_app(app, tracer_provider=provider)


def test_a_sampled_read_has_one_span_named_after_its_route_with_lean_attributes() -> None:
    provider, exporter = _provider()
    response = _shop(provider).test_client().get("/api/v1/products/kettle?color=red")

    [span] = exporter.get_finished_spans()
    assert span.name == "GET /api/v1/products/<id_or_slug>"
    assert span.kind is SpanKind.SERVER and span.parent is None
    assert dict(span.attributes) == {
        "http.method": "GET", "http.scheme": "http", "http.target": "/api/v1/products/kettle?color=red",
        "net.peer.ip": "127.0.0.1", "http.route": "/api/v1/products/<id_or_slug>",
        "http.status_code": 200}
    assert span.status.status_code is StatusCode.UNSET
    assert response.headers["X-Trace-Id"] == f"{span.context.trace_id:032x}"
    assert response.headers["traceparent"] == (
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-"
        f"{int(span.context.trace_flags):02x}")
    assert int(response.headers["traceparent"][-2:], 16) & 1  # sampled


def test_an_unhandled_error_is_recorded_on_the_span_and_a_4xx_is_not_an_error() -> None:
    provider, exporter = _provider()
    client = _shop(provider).test_client()

    assert client.get("/api/v1/products/broken").status_code == 500
    assert client.get("/api/v1/products/missing").status_code == 404
    assert client.get("/no/such/route").status_code == 404

    broken, missing, unrouted = exporter.get_finished_spans()
    assert broken.status.status_code is StatusCode.ERROR
    assert "the catalog table is unreadable" in broken.status.description
    assert [e.name for e in broken.events] == ["exception"]
    assert broken.attributes["http.status_code"] == 500
    assert missing.status.status_code is StatusCode.UNSET
    assert missing.name == "GET /api/v1/products/<id_or_slug>"
    # No route: the method alone, never the path (a scanner's paths would be endless names).
    assert (unrouted.name, "http.route" in unrouted.attributes) == ("GET", False)


def test_a_callers_traceparent_is_continued() -> None:
    provider, exporter = _provider(ParentBased(ALWAYS_OFF))
    client = _shop(provider).test_client()

    response = client.get("/api/v1/products/kettle",
                          headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})

    [span] = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE == response.headers["X-Trace-Id"]
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN


def test_an_unsampled_callers_trace_stays_unsampled_and_keeps_its_id() -> None:
    provider, exporter = _provider(ParentBased(ALWAYS_ON))
    seen: list[str] = []
    app = _shop(provider)

    @app.get("/inside")
    def inside():
        context = trace.get_current_span().get_span_context()
        seen.append(f"{context.trace_id:032x}")
        return jsonify(recording=trace.get_current_span().is_recording())

    response = app.test_client().get(
        "/inside", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"})

    assert exporter.get_finished_spans() == ()
    assert response.json == {"recording": False}
    assert seen == [CALLER_TRACE] and response.headers["X-Trace-Id"] == CALLER_TRACE
    assert response.headers["traceparent"].endswith("-00")


def test_a_malformed_traceparent_starts_a_new_trace() -> None:
    provider, exporter = _provider()
    response = _shop(provider).test_client().get(
        "/api/v1/products/kettle", headers={"traceparent": "00-zz-not-a-trace"})

    [span] = exporter.get_finished_spans()
    assert span.parent is None and response.status_code == 200


def test_the_gateways_span_ends_when_the_server_closes_the_body() -> None:
    provider, exporter = _provider()
    closed: list[bool] = []

    class Body:
        def __iter__(self):
            yield b"part one, "
            yield b"part two"

        def close(self) -> None:
            closed.append(True)

    def gateway(environ, start_response):
        start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
        return Body()

    app = TracedWSGI(gateway, tracer_provider=provider)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/orders/12", "wsgi.url_scheme": "http"}
    body = app(environ, lambda status, headers, exc_info=None: None)

    assert exporter.get_finished_spans() == ()  # answered, not yet sent
    assert b"".join(body) == b"part one, part two"
    body.close()
    [span] = exporter.get_finished_spans()
    assert closed == [True]
    assert span.name == "GET /api/v1/orders/{id}"
    assert span.status.status_code is StatusCode.ERROR  # a 5xx answer


def test_an_app_that_raises_ends_its_span_with_the_error() -> None:
    provider, exporter = _provider()

    def gateway(environ, start_response):
        raise ConnectionError("upstream vanished")

    with pytest.raises(ConnectionError):
        ServerSpans(gateway, provider)({"REQUEST_METHOD": "POST", "PATH_INFO": "/x"},
                                       lambda *a: None)

    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ConnectionError: upstream vanished"


def test_an_odd_status_line_does_not_break_the_request() -> None:
    provider, exporter = _provider()

    def gateway(environ, start_response):
        start_response("abc", [])
        return [b""]

    list(ServerSpans(gateway, provider)({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"},
                                        lambda *a: None))

    [span] = exporter.get_finished_spans()
    assert "http.status_code" not in span.attributes


def test_tracing_off_leaves_the_app_alone() -> None:
    app = Flask("product")
    original = app.wsgi_app

    assert instrument_app(app, tracer_provider=trace.NoOpTracerProvider()) is app
    assert app.wsgi_app == original  # the same bound method: not wrapped


def _environ(path: str = "/api/v1/products/7", **headers: str) -> dict:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "REMOTE_ADDR": "10.0.0.9",
               "wsgi.url_scheme": "http"}
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return environ


def test_an_async_whole_answer_is_traced_as_a_wsgi_call_is() -> None:
    import asyncio

    provider, exporter = _provider()
    spans = TracedWSGI(lambda environ, start: [], tracer_provider=provider)
    seen: list = []

    async def answer():
        seen.append(trace.get_current_span().get_span_context())
        await asyncio.sleep(0)  # the handler's task keeps its context across a wait
        seen.append(trace.get_current_span().get_span_context())
        return 502, [("Content-Type", "application/json"), ("traceparent", "00-upstream-s-01")], b"{}"

    status, headers, body = asyncio.run(spans.whole_answer(
        _environ(traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"), answer))

    [span] = exporter.get_finished_spans()
    assert (status, body) == (502, b"{}")
    assert span.name == "GET /api/v1/products/{id}" and span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN
    assert span.attributes["http.status_code"] == 502
    assert span.status.status_code is StatusCode.ERROR
    assert seen == [span.context, span.context]  # the handler ran inside the request's span
    assert trace.get_current_span().get_span_context() != span.context  # and only inside it
    assert [h for h in headers if h[0].lower() in ("traceparent", "x-trace-id")] == [
        ("X-Trace-Id", CALLER_TRACE),
        ("traceparent", f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01")]


def test_an_async_answer_unsampled_or_failing() -> None:
    import asyncio

    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value

    provider, exporter = _provider(ParentBased(ALWAYS_OFF))
    spans = TracedWSGI(lambda environ, start: [], tracer_provider=provider)
    suppressed: list = []

    async def answer():
        suppressed.append(get_value(_SUPPRESS_INSTRUMENTATION_KEY))
        return 200, [], b"ok"

    status, headers, _ = asyncio.run(spans.whole_answer(_environ(), answer))
    assert status == 200 and suppressed == [True] and exporter.get_finished_spans() == ()
    assert dict(headers)["traceparent"].endswith("-00")  # the trace id answered, not sampled

    provider, exporter = _provider()
    spans = TracedWSGI(lambda environ, start: [], tracer_provider=provider)

    async def broken():
        raise RuntimeError("the upstream exchange blew up")

    with pytest.raises(RuntimeError):
        asyncio.run(spans.whole_answer(_environ(), broken))
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert "blew up" in span.status.description and [e.name for e in span.events] == ["exception"]
    # An excluded path gets no span and no headers of ours.
    assert asyncio.run(spans.whole_answer(_environ("/healthz"), answer)) == (200, [], b"ok")
