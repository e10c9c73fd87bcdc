"""Server spans and trace headers, in process with a test-only tracer provider."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask import Flask, abort, jsonify
from werkzeug.test import Client

from observability.tracing import (
    TracedWSGI,
    install_log_correlation,
    instrument_app,
    trace_id_headers,
)


@pytest.fixture
def flask_app(memory) -> Flask:
    app = Flask("product")

    @app.before_request
    def refuse_text() -> None:  # like build_app's 415 check, registered before tracing
        from flask import request

        if request.mimetype == "text/plain":
            abort(415)

    @app.get("/products/<int:product_id>")
    def product(product_id: int):
        return jsonify(id=product_id, headers=trace_id_headers())

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return instrument_app(app, tracer_provider=memory[0])


def test_a_response_carries_its_trace_id(flask_app: Flask, memory) -> None:
    response = flask_app.test_client().get("/products/7")

    (span,) = memory[1].get_finished_spans()
    trace_id = f"{span.context.trace_id:032x}"
    assert span.name == "GET /products/<int:product_id>"
    assert response.headers["X-Trace-Id"] == trace_id
    assert response.headers["traceparent"].startswith(f"00-{trace_id}-{span.context.span_id:016x}-")
    assert response.json["headers"] == {"X-Trace-Id": trace_id}


def test_a_request_refused_before_the_view_is_still_traced(flask_app: Flask, memory) -> None:
    response = flask_app.test_client().post("/products/7", data="x", content_type="text/plain")

    assert response.status_code == 415
    (span,) = memory[1].get_finished_spans()
    assert response.headers["X-Trace-Id"] == f"{span.context.trace_id:032x}"


def test_probes_are_not_traced(flask_app: Flask, memory) -> None:
    response = flask_app.test_client().get("/healthz")

    assert response.status_code == 200 and "X-Trace-Id" not in response.headers
    assert memory[1].get_finished_spans() == ()


def test_instrumenting_twice_is_harmless(flask_app: Flask, memory) -> None:
    instrument_app(flask_app, tracer_provider=memory[0])

    flask_app.test_client().get("/products/1")

    assert len(memory[1].get_finished_spans()) == 1


def test_no_span_no_trace_headers() -> None:
    assert trace_id_headers() == {}


def _gateway(environ, start_response):
    # An upstream's own trace headers come back through the gateway: they must be replaced.
    start_response("200 OK", [("X-Trace-Id", "f" * 32), ("Traceparent", "00-x-y-01"),
                              ("Content-Type", "text/plain")])
    return [b"ok"]


_gateway.settings = "gateway settings"  # type: ignore[attr-defined]


def test_a_raw_wsgi_app_is_traced_and_keeps_its_attributes(memory) -> None:
    app = TracedWSGI(_gateway, tracer_provider=memory[0])

    response = Client(app).get("/api/v1/products/42?x=1", buffered=True)
    probe = Client(app).get("/healthz", buffered=True)

    (span,) = memory[1].get_finished_spans()
    trace_id = f"{span.context.trace_id:032x}"
    assert span.name == "GET /api/v1/products/{id}"
    assert response.headers.getlist("X-Trace-Id") == [trace_id]
    assert len(response.headers.getlist("traceparent")) == 1
    assert response.headers["traceparent"].startswith(f"00-{trace_id}-")
    assert probe.headers["X-Trace-Id"] == "f" * 32  # passed through untouched, untraced
    assert app.settings == "gateway settings"


@pytest.fixture
def log_factory() -> Iterator[None]:
    original = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(original)


def test_log_records_carry_the_trace_ids(memory, log_factory, caplog) -> None:
    install_log_correlation()
    install_log_correlation()  # idempotent
    logger = logging.getLogger("test.correlation")

    with caplog.at_level(logging.INFO, logger="test.correlation"):
        logger.info("outside")
        with memory[0].get_tracer("t").start_as_current_span("work") as span:
            logger.info("inside")

    outside, inside = caplog.records
    assert outside.otelTraceID == "0"
    assert inside.otelTraceID == f"{span.get_span_context().trace_id:032x}"
    assert inside.otelSpanID == f"{span.get_span_context().span_id:016x}"
