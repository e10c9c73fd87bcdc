"""Statement spans: one lean CLIENT span per SQL statement a recorded request runs.

`trace_engine(engine, provider)` traces one engine's statements; `trace_statements(provider)`
traces every engine made from then on (`create_engine` and `engine_from_config`, as the
official SQLAlchemy instrumentation hooks them). A span is named `SELECT product.db` (the
statement's verb and the database) and carries `db.system`, `db.name`,
`db.statement` and, for a server, `net.peer.name`/`net.peer.port`/`db.user` — the old database
conventions, as the official instrumentation wrote them — with an error status when the
statement fails.

The span is made around the dialect's own `do_execute` (and its `executemany` and
no-parameters forms), not by engine events: an engine with event listeners makes SQLAlchemy
dispatch through them on every statement, traced or not, and most statements belong to
unsampled reads. Nothing is made while instrumentation is suppressed (an unsampled request:
`observability.server_spans`); there is no `connect` span per pool checkout and no
connection-usage counter (it went nowhere without a meter provider).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

_EXECUTE_METHODS = ("do_execute", "do_execute_no_params", "do_executemany")
_SPANS = "_breakwater_statement_spans"
_SYSTEMS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
_default: trace.Tracer | None = None


class EngineSpans:
    """One engine's tracer and the attributes every statement span of it carries."""

    __slots__ = ("tracer", "database", "attributes")

    def __init__(self, tracer: trace.Tracer, engine: Any) -> None:
        url, dialect = engine.url, engine.dialect.name
        self.tracer = tracer
        database = url.database or ""
        # A SQLite database is a path: its file name says whose it is.
        self.database = PurePath(database).name if dialect == "sqlite" else database
        attributes: dict[str, Any] = {"db.system": _SYSTEMS.get(dialect, dialect),
                                      "db.name": database}
        if url.host:
            attributes["net.peer.name"] = url.host
        if url.port:
            attributes["net.peer.port"] = url.port
        if url.username:
            attributes["db.user"] = url.username
        self.attributes = attributes

    def start(self, statement: str) -> trace.Span:
        """The statement's span, started under the current span."""
        verb = statement.split(None, 1)[0] if statement and not statement.isspace() else "SQL"
        return self.tracer.start_span(
            f"{verb} {self.database}" if self.database else verb, kind=SpanKind.CLIENT,
            attributes={**self.attributes, "db.statement": statement})


def trace_engine(engine: Any, provider: trace.TracerProvider) -> None:
    """Trace one engine's statements with `provider` (again: the last provider wins)."""
    _install(getattr(engine, "sync_engine", engine), _tracer(provider))


def trace_statements(provider: trace.TracerProvider) -> None:
    """Trace the statements of every engine made from now on, with `provider` (the first
    provider given stays)."""
    global _default
    if _default is not None:
        return
    _default = _tracer(provider)
    import sqlalchemy
    import sqlalchemy.engine
    import sqlalchemy.engine.create

    for module in (sqlalchemy, sqlalchemy.engine, sqlalchemy.engine.create):
        for name in ("create_engine", "engine_from_config"):
            setattr(module, name, _tracing_new_engines(getattr(module, name)))


def _tracing_new_engines(make: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(make, "_breakwater_traces", False):
        return make

    @functools.wraps(make)
    def made(*args: Any, **kwargs: Any) -> Any:
        engine = make(*args, **kwargs)
        if _default is not None and getattr(engine.dialect, _SPANS, None) is None:
            _install(engine, _default)
        return engine

    made._breakwater_traces = True  # type: ignore[attr-defined]
    return made


def _install(engine: Any, tracer: trace.Tracer) -> None:
    dialect = engine.dialect
    if getattr(dialect, _SPANS, None) is None:
        for name in _EXECUTE_METHODS:
            setattr(dialect, name, _traced(getattr(dialect, name), dialect))
    setattr(dialect, _SPANS, EngineSpans(tracer, engine))


def _tracer(provider: trace.TracerProvider) -> trace.Tracer:
    from observability import __name__ as scope

    return trace.get_tracer(f"{scope}.statements", tracer_provider=provider)


def _traced(execute: Callable[..., Any], dialect: Any) -> Callable[..., Any]:
    def traced(cursor: Any, statement: str, *rest: Any) -> Any:
        if not is_instrumentation_enabled():
            return execute(cursor, statement, *rest)
        span = getattr(dialect, _SPANS).start(statement)
        try:
            return execute(cursor, statement, *rest)
        except BaseException as error:
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise
        finally:
            span.end()

    return traced
