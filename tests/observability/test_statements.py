"""Lean statement spans: one per statement of a recorded request, none for an unsampled one,
errors marked, engines made later traced too."""

from __future__ import annotations

import pytest
import sqlalchemy
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from observability.statements import trace_engine


@pytest.fixture
def traced(tmp_path) -> tuple[sqlalchemy.Engine, InMemorySpanExporter, trace.Tracer]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/catalog.db")
    trace_engine(engine, provider)
    return engine, exporter, provider.get_tracer("test")


def test_a_statement_under_a_request_is_its_child(traced) -> None:
    engine, exporter, tracer = traced
    with tracer.start_as_current_span("GET /x") as request, engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select 41 + :n"), {"n": 1}).scalar() == 42

    statement = next(s for s in exporter.get_finished_spans() if s.name != "GET /x")
    assert statement.name == "select catalog.db"
    assert statement.kind is SpanKind.CLIENT
    assert statement.parent.span_id == request.get_span_context().span_id
    assert statement.attributes["db.system"] == "sqlite"
    assert statement.attributes["db.statement"] == "select 41 + ?"
    assert statement.attributes["db.name"].endswith("catalog.db")


def test_a_failing_statement_is_an_error_and_still_raises(traced) -> None:
    engine, exporter, tracer = traced
    with tracer.start_as_current_span("GET /x"), engine.connect() as connection, \
            pytest.raises(sqlalchemy.exc.OperationalError):
        connection.execute(sqlalchemy.text("select * from no_such_table"))

    statement = next(s for s in exporter.get_finished_spans() if s.name != "GET /x")
    assert statement.status.status_code is StatusCode.ERROR
    assert "no_such_table" in statement.status.description


def test_executemany_and_no_parameter_forms_are_traced(traced) -> None:
    engine, exporter, tracer = traced
    with tracer.start_as_current_span("POST /x"), engine.begin() as connection:
        connection.execute(sqlalchemy.text("create table t (n integer)"))
        connection.execute(sqlalchemy.text("insert into t values (:n)"), [{"n": 1}, {"n": 2}])

    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["POST /x", "create catalog.db", "insert catalog.db"]


def test_nothing_is_made_while_instrumentation_is_suppressed(traced) -> None:
    engine, exporter, tracer = traced
    with suppress_instrumentation(), engine.connect() as connection:
        connection.execute(sqlalchemy.text("select 1"))

    assert exporter.get_finished_spans() == ()


def test_tracing_an_engine_twice_makes_one_span_per_statement(traced) -> None:
    engine, exporter, tracer = traced
    provider = TracerProvider()
    second = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(second))
    trace_engine(engine, provider)  # the last provider wins

    token = context.attach(trace.set_span_in_context(provider.get_tracer("t").start_span("r")))
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
    finally:
        context.detach(token)

    assert [s.name for s in second.get_finished_spans()] == ["select catalog.db"]
    assert exporter.get_finished_spans() == ()
