"""The default sampler: every request but catalog reads, those at a ratio, decided at the root."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, abort, jsonify
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from prometheus_client import generate_latest

from observability.sampling import (
    CatalogReadSampler,
    choose_sampler,
    default_sampler,
    is_catalog_read,
    parse_ratio,
)
from observability.settings import TracingConfigError, TracingSettings
from observability.tracing import build_provider, install_log_correlation, instrument_app

# Trace ids either side of TraceIdRatioBased's bound for 0.5 (it compares the low 64 bits).
BELOW_HALF = TraceIdRatioBased.get_bound_for_rate(0.5) - 1
ABOVE_HALF = TraceIdRatioBased.get_bound_for_rate(0.5) + 1


def _decide(sampler, method: str, path: str, trace_id: int = BELOW_HALF, parent=None,
            stable: bool = False) -> Decision:
    attributes = ({"http.request.method": method, "url.path": path} if stable
                  else {"http.method": method, "http.target": path})
    return sampler.should_sample(parent, trace_id, f"{method} {path}", SpanKind.SERVER,
                                 attributes).decision


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/v1/products", True),
    ("GET", "/api/v1/products/product-3", True),
    ("HEAD", "/api/v2/products/7?fields=name", True),
    ("GET", "/api/v1/productsX", False),
    ("POST", "/api/v1/products", False),
    ("PATCH", "/api/v1/products/3", False),
    ("GET", "/api/v1/cart", False),
    ("GET", "/api/v1/reservations/4", False),
    ("POST", "/api/v1/orders", False),
])
@pytest.mark.parametrize("stable", [False, True])
def test_catalog_reads_are_gets_under_the_catalog_prefixes(method: str, path: str, expected: bool,
                                                           stable: bool) -> None:
    attributes = ({"http.request.method": method, "url.path": path} if stable
                  else {"http.method": method, "http.target": path})

    assert is_catalog_read(attributes) is expected


@pytest.mark.parametrize(("key", "url", "expected"), [
    ("http.url", "http://127.0.0.1/api/v1/products/product-7", True),
    ("url.full", "http://gateway:8080/api/v2/products?page=2", True),
    ("http.url", "http://127.0.0.1/api/v1/cart", False),
])
def test_a_whole_url_is_read_for_its_path(key: str, url: str, expected: bool) -> None:
    # The gateway's WSGI middleware (old conventions) sends `http.url` and no `http.target`
    # when the request names its host.
    assert is_catalog_read({"http.method": "GET", key: url}) is expected


def test_the_gateways_server_span_for_a_catalog_read_follows_the_ratio() -> None:
    from werkzeug.test import Client, EnvironBuilder

    from observability.tracing import TracedWSGI

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "gateway"}),
                              sampler=default_sampler(0.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def gateway_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = TracedWSGI(gateway_app, tracer_provider=provider)
    environ = EnvironBuilder(path="/api/v1/products/product-7", method="GET",
                             base_url="http://127.0.0.1:8080").get_environ()
    for raw in ("RAW_URI", "REQUEST_URI"):  # a server that sets neither (not gunicorn)
        environ.pop(raw, None)
    list(app(environ, lambda *args: None))
    Client(app).post("/api/v1/orders")

    assert [span.name for span in exporter.get_finished_spans()] == ["POST /api/v1/orders"]


def test_spans_without_http_attributes_are_not_catalog_reads() -> None:
    assert not is_catalog_read(None)
    assert not is_catalog_read({"db.statement": "SELECT 1"})


def test_catalog_reads_follow_the_ratio_everything_else_is_kept() -> None:
    half = CatalogReadSampler(0.5)

    assert _decide(half, "GET", "/api/v1/products/3", BELOW_HALF) == Decision.RECORD_AND_SAMPLE
    assert _decide(half, "GET", "/api/v1/products/3", ABOVE_HALF) == Decision.DROP
    # Writes, checkouts and other reads are kept whatever their trace id.
    for method, path in (("POST", "/api/v1/products"), ("POST", "/api/v1/orders"),
                         ("GET", "/api/v1/cart"), ("POST", "/api/v1/auth/login")):
        assert _decide(half, method, path, ABOVE_HALF) == Decision.RECORD_AND_SAMPLE
    assert _decide(CatalogReadSampler(0.0), "GET", "/api/v1/products", BELOW_HALF) == Decision.DROP
    assert (_decide(CatalogReadSampler(1.0), "GET", "/api/v1/products", ABOVE_HALF, stable=True)
            == Decision.RECORD_AND_SAMPLE)


def _parent(sampled: bool):
    context = SpanContext(0xABC, 0xDEF, is_remote=True,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0))
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_a_trace_is_whole_or_absent_children_follow_the_root() -> None:
    sampler = default_sampler(0.0)

    # Under an unsampled catalog read, even a write's span is dropped...
    assert _decide(sampler, "POST", "/api/v1/orders", parent=_parent(False)) == Decision.DROP
    # ...and under a sampled one, even a catalog read's span is kept.
    assert (_decide(sampler, "GET", "/api/v1/products", parent=_parent(True))
            == Decision.RECORD_AND_SAMPLE)


def test_the_standard_variables_override_the_default() -> None:
    assert choose_sampler(0.1, {"OTEL_TRACES_SAMPLER": "always_on"}) is None
    assert choose_sampler(0.25, {}).get_description() == (
        "ParentBased{root:BreakwaterCatalogReads{0.25},remoteParentSampled:AlwaysOnSampler,"
        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
        "localParentNotSampled:AlwaysOffSampler}")


def test_always_on_samples_every_catalog_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    provider, _ = build_provider("product", settings=TracingSettings.from_env({}))

    assert provider.sampler.get_description() == "AlwaysOnSampler"
    assert _decide(provider.sampler, "GET", "/api/v1/products/3", ABOVE_HALF) == (
        Decision.RECORD_AND_SAMPLE)


def test_without_the_standard_variable_the_catalog_ratio_applies(monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    settings = TracingSettings.from_env({"BREAKWATER_TRACES_CATALOG_RATIO": "0.5"})
    provider, _ = build_provider("product", settings=settings)

    assert settings.catalog_ratio == 0.5
    assert "BreakwaterCatalogReads{0.5}" in provider.sampler.get_description()
    assert TracingSettings.from_env({}).catalog_ratio == 0.1


@pytest.mark.parametrize("text", ["abc", "1.5", "-0.1"])
def test_a_bad_ratio_is_refused_with_what_to_write(text: str) -> None:
    with pytest.raises(TracingConfigError, match="BREAKWATER_TRACES_CATALOG_RATIO.*from 0"):
        TracingSettings.from_env({"BREAKWATER_TRACES_CATALOG_RATIO": text})
    assert parse_ratio(" ") == 0.1


@pytest.fixture
def unsampled_reads_app():
    """A service-like app whose catalog reads are never sampled: errors, metrics, logs."""
    from services.common.app import _Metrics
    from services.common.errors import register_error_handlers

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "product"}),
                              sampler=default_sampler(0.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Flask("product")
    register_error_handlers(app)
    metrics = _Metrics("product")
    metrics.install(app)

    @app.get("/api/v1/products/<name>")
    def read(name: str):
        if name == "broken":
            raise RuntimeError("the catalog table is unreadable")
        if name == "missing":
            abort(404)
        return jsonify(name=name)

    @app.post("/api/v1/products")
    def write():
        return jsonify(ok=True), 201

    install_log_correlation()
    return instrument_app(app, tracer_provider=provider), exporter, metrics


def test_unsampled_reads_keep_their_trace_id_logs_and_metrics(unsampled_reads_app, caplog) -> None:
    app, exporter, metrics = unsampled_reads_app
    client = app.test_client()

    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/products/broken")

    assert response.status_code == 500
    assert exporter.get_finished_spans() == ()  # not sampled...
    trace_id = response.headers["X-Trace-Id"]  # ...but it has a trace id,
    assert int(response.headers["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0  # unsampled flag
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.otelTraceID == trace_id  # logged with it,
    assert record.otelTraceSampled is False
    exposition = generate_latest(metrics.registry).decode()
    assert ('breakwater_http_requests_total{method="GET",route="/api/v1/products/<name>",'
            'service="product",status="500"} 1.0') in exposition  # and counted.

    created = client.post("/api/v1/products", json={})
    assert created.status_code == 201
    [span] = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == created.headers["X-Trace-Id"]


@pytest.mark.parametrize(("url", "excluded"), [
    ("http://127.0.0.1:8001/healthz", True),
    ("http://product:8000/readyz", True),
    ("http://127.0.0.1:9/metrics?name=x", True),
    ("http://127.0.0.1:8001/api/v1/products/healthz", False),
    ("http://127.0.0.1:8001/healthzz", False),
    ("http://127.0.0.1:8001/api/v1/products", False),
])
def test_http_client_calls_to_probes_get_no_span(url: str, excluded: bool) -> None:
    from opentelemetry.util.http import parse_excluded_urls

    from observability.tracing import PROBE_URL_PATTERNS

    assert parse_excluded_urls(",".join(PROBE_URL_PATTERNS)).url_disabled(url) is excluded


def _provider(ratio: float) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}),
                              sampler=default_sampler(ratio))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_an_unsampled_flask_request_makes_no_http_client_spans() -> None:
    from opentelemetry import propagate
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled

    provider, _ = _provider(0.0)
    app = Flask("order")

    @app.route("/api/v1/products/<name>", methods=["GET", "POST"])
    def view(name: str):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # what the resilient client sends downstream
        return jsonify(clients_traced=is_http_instrumentation_enabled(), sent=carrier)

    client = instrument_app(app, tracer_provider=provider).test_client()

    read = client.get("/api/v1/products/3")
    assert read.json["clients_traced"] is False
    # ...yet the next service still joins the same (unsampled) trace.
    assert read.json["sent"]["traceparent"].split("-")[1] == read.headers["X-Trace-Id"]
    assert client.post("/api/v1/products/3").json["clients_traced"] is True
    assert is_http_instrumentation_enabled()  # nothing leaks out of the request


def test_an_unsampled_gateway_request_makes_no_http_client_spans() -> None:
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
    from werkzeug.test import Client

    from observability.tracing import TracedWSGI

    provider, exporter = _provider(0.0)
    seen: list[bool] = []

    def gateway_app(environ, start_response):
        seen.append(is_http_instrumentation_enabled())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = Client(TracedWSGI(gateway_app, tracer_provider=provider))
    client.get("/api/v1/products/3")
    client.post("/api/v1/orders")

    assert seen == [False, True]
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /api/v1/orders"]
    assert is_http_instrumentation_enabled()


class CountingSampler(Sampler):
    """Samples a root when its trace id is even (a pure function of the id, like a trace-id
    ratio), parent-based below; records every question it is asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None) -> SamplingResult:
        self.asked.append((name, trace_id))
        parent = trace.get_current_span(parent_context).get_span_context()
        sampled = parent.trace_flags.sampled if parent.is_valid else trace_id % 2 == 0
        return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP)

    def get_description(self) -> str:
        return "CountingSampler"


def _sql_app(provider: TracerProvider, tmp_path) -> Flask:
    import sqlalchemy
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("product")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/catalog.db"
    db = SQLAlchemy(app)

    @app.get("/api/v1/products/<name>")
    def read(name: str):
        db.session.execute(sqlalchemy.text("select 1")).scalar()
        return jsonify(name=name, trace_id=format(trace.get_current_span().get_span_context()
                                                  .trace_id, "032x"))

    return instrument_app(app, tracer_provider=provider)


def test_an_unsampled_request_asks_once_and_makes_no_span_at_all(tmp_path) -> None:
    sampler = CountingSampler()
    exporter = InMemorySpanExporter()
    provider, _ = build_provider("product", exporter=exporter, sampler=sampler,
                                 settings=TracingSettings.from_env({}))
    client = _sql_app(provider, tmp_path).test_client()

    for _ in range(40):
        response = client.get("/api/v1/products/3")
        assert response.status_code == 200
        assert response.headers["X-Trace-Id"] == response.json["trace_id"]
    provider.force_flush()

    dropped = [trace_id for _, trace_id in sampler.asked if trace_id % 2]
    kept = {trace_id for _, trace_id in sampler.asked if trace_id % 2 == 0}
    assert dropped and kept  # both kinds happened
    # An unsampled request: one question (its root), no server span, no statement span.
    server_questions = [name for name, trace_id in sampler.asked if trace_id % 2]
    assert server_questions == ["GET /api/v1/products/3"] * len(dropped)
    # A sampled one keeps the trace id it was decided for: the instrumentation's spans have it
    # (asked again by the SDK, the sampler agrees: a ratio is not applied twice).
    spans = exporter.get_finished_spans()
    assert {span.context.trace_id for span in spans} == kept
    names = sorted({span.name.split(" ", 1)[0] if span.name.startswith("select") else span.name
                    for span in spans})
    assert names == ["GET /api/v1/products/<name>", "select"]


def test_a_sampled_root_keeps_the_ratio_it_was_decided_at() -> None:
    from werkzeug.test import Client

    from observability.tracing import TracedWSGI

    exporter = InMemorySpanExporter()
    provider, _ = build_provider("gateway", exporter=exporter, sampler=default_sampler(0.5),
                                 settings=TracingSettings.from_env({}))

    def gateway_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = Client(TracedWSGI(gateway_app, tracer_provider=provider))
    answers = [client.get("/api/v1/products/3", buffered=True) for _ in range(400)]
    provider.force_flush()

    recorded = {f"{span.context.trace_id:032x}" for span in exporter.get_finished_spans()}
    sampled = {a.headers["X-Trace-Id"] for a in answers
               if int(a.headers["traceparent"].rsplit("-", 1)[1], 16) & 1}
    assert recorded == sampled  # every request answered as sampled has its span, no other
    assert 0.4 < len(sampled) / len(answers) < 0.6  # 0.5, not 0.25 (a ratio applied twice)


def test_background_polls_start_no_trace_but_work_found_is_traced() -> None:
    provider, exporter = _provider(0.1)
    tracer = provider.get_tracer("reconciler")

    # A periodic query outside any request or task span (the reconciler's poll every 2 s).
    tracer.start_span("SELECT order.db", kind=SpanKind.CLIENT).end()
    # Work it found: its own span, and the calls made for it below.
    with tracer.start_as_current_span("reconcile order"):
        tracer.start_span("SELECT order.db", kind=SpanKind.CLIENT).end()
        tracer.start_span("GET /api/v1/reservations/by-ref/{ref}", kind=SpanKind.CLIENT).end()

    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "GET /api/v1/reservations/by-ref/{ref}", "SELECT order.db", "reconcile order"]
    assert _decide(default_sampler(1.0), "GET", "/api/v1/cart") is Decision.RECORD_AND_SAMPLE
