"""Server spans: one lean SERVER span per sampled request, made in a WSGI middleware.

`ServerSpans(app, provider)` wraps any WSGI app (a Flask app's `wsgi_app`, the gateway). For
each request it asks the provider's sampler once, before any span exists, with what every
sampler reads: the parent context from the request's propagation headers, the method and the
path. Then:

- **Sampled**: a SERVER span named `GET /route` with six attributes (`http.method`,
  `http.scheme`, `http.target`, `net.peer.ip`, `http.route` when a `route` function knows the
  request's route, and `http.status_code`: the old HTTP conventions the client spans use
  too), an error status for a 5xx answer or an exception, ended when the server closes the
  answer's body (or, `end_when_closed=False`, when the app returns it: a Flask app has made
  its whole answer by then, as the official Flask instrumentation ended its span at teardown).
  Without a route the span is named by `name(method, path)`. A root keeps the trace id it
  was decided for (`ReservedTraceIds`), so the SDK, asking the sampler again, agrees.
- **Not sampled**: no span at all. The app runs in the context of a non-recording span that
  carries the trace id, with instrumentation suppressed, so its statements and HTTP calls make
  no spans either; the trace id is still propagated (sampled flag off), answered and logged.

Either way the answer carries `X-Trace-Id` and `traceparent` (replacing an upstream's own).
Probe paths get nothing. The official Flask/WSGI instrumentations made the same span with
twelve attributes, request hooks, metrics instruments that go nowhere without a meter
provider, and a non-recording span for every unsampled request; docs/HOT_PATHS.md has the
measured difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from opentelemetry import context, propagate, trace

# What `suppress_instrumentation()` sets: set here in the request's one context instead.
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from observability.presampling import reserved_trace_id

TRACE_ID_HEADER = "X-Trace-Id"
_OURS = frozenset({"x-trace-id", "traceparent"})
StartResponse = Callable[..., Any]
SpanName = Callable[[str, str], str]
Route = Callable[[dict[str, Any]], "str | None"]
WholeAnswer = tuple[int, list[tuple[str, str]], bytes]


def _method_only(method: str, path: str) -> str:
    # Until the route is known (a Flask app names the span after routing): a path is unbounded.
    return method


class ServerSpans:
    """WSGI middleware: the sampling decision first, then a lean server span or none."""

    def __init__(self, app: Callable[..., Any], provider: TracerProvider, *,
                 excluded_paths: Iterable[str] = (), name: SpanName = _method_only,
                 route: Route | None = None, end_when_closed: bool = True) -> None:
        from observability import __name__ as scope

        self.app = app
        self.provider = provider
        self.tracer = provider.get_tracer(f"{scope}.server")
        self.excluded_paths = frozenset(excluded_paths)
        self.name = name
        self.route = route
        self.end_when_closed = end_when_closed

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        begun = self.begin(environ)
        if begun is None:
            return self.app(environ, start_response)
        scope, ours, span = begun
        if span is None:
            # Flask's teardown (the database connection back to its pool) and the gateway's
            # upstream call run inside the call, so the whole request is in the scope.
            token = context.attach(scope)
            try:
                return self.app(environ, _answer_with(start_response, ours))
            finally:
                context.detach(token)
        return self._sampled(environ, start_response, span, scope, ours)

    async def whole_answer(self, environ: dict[str, Any],
                           answer: Callable[[], Awaitable[WholeAnswer]]) -> WholeAnswer:
        """An async handler's whole answer, traced as a WSGI call is: the same decision, span,
        context (set for the handler's task) and trace headers; `answer` gives
        (status, headers, body)."""
        begun = self.begin(environ)
        if begun is None:
            return await answer()
        scope, ours, span = begun
        token = context.attach(scope)
        try:
            status, headers, body = await answer()
        except BaseException as error:
            if span is not None:
                _failed(span, error)
            raise
        finally:
            context.detach(token)
        if span is not None:
            _record_status(span, status)
            span.end()
        return status, _with_ours(headers, ours), body

    def begin(self, environ: dict[str, Any]
              ) -> tuple[context.Context, list[tuple[str, str]], trace.Span | None] | None:
        """The request's decision: the context to run it in, the trace headers to answer with
        and its span (None when unsampled); None for an excluded path."""
        path = environ.get("PATH_INFO") or "/"
        if path in self.excluded_paths:
            return None
        method = environ.get("REQUEST_METHOD") or "GET"
        parent = _extract(environ)
        parent_span = (trace.get_current_span(parent).get_span_context() if parent is not None
                       else INVALID_SPAN_CONTEXT)
        ids = self.provider.id_generator
        root = not parent_span.is_valid
        trace_id = ids.generate_trace_id() if root else parent_span.trace_id
        query = environ.get("QUERY_STRING")
        attributes = {"http.method": method, "http.scheme": environ.get("wsgi.url_scheme", "http"),
                      "http.target": f"{path}?{query}" if query else path,
                      "net.peer.ip": environ.get("REMOTE_ADDR", "")}
        decision = self.provider.sampler.should_sample(
            parent, trace_id, f"{method} {path}", SpanKind.SERVER, attributes)
        if decision.decision is Decision.DROP:
            unsampled = SpanContext(trace_id, ids.generate_span_id(), is_remote=False,
                                    trace_flags=TraceFlags(TraceFlags.DEFAULT),
                                    trace_state=decision.trace_state)
            scope = trace.set_span_in_context(NonRecordingSpan(unsampled), parent)
            scope = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, scope)
            return scope, _trace_headers(unsampled), None
        route = self.route(environ) if self.route is not None else None
        if route is None:
            name = self.name(method, path)
        else:
            name, attributes["http.route"] = f"{method} {route}", route
        with reserved_trace_id(trace_id if root else 0):
            span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER,
                                          attributes=attributes)
        return (trace.set_span_in_context(span, parent), _trace_headers(span.get_span_context()),
                span)

    def _sampled(self, environ: dict[str, Any], start_response: StartResponse,
                 span: trace.Span, scope: context.Context, ours: list[tuple[str, str]]) -> Any:
        answer = _answer_with(start_response, ours)

        def start(status: str, response_headers: list[tuple[str, str]],
                  exc_info: Any = None) -> Any:
            code = _status_code(status)
            if code is not None:
                _record_status(span, code)
            return answer(status, response_headers, exc_info)

        token = context.attach(scope)
        try:
            body = self.app(environ, start)
        except BaseException as error:
            _failed(span, error)
            raise
        finally:
            context.detach(token)
        if not self.end_when_closed:
            span.end()
            return body
        return _ends_span(body, span)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def _ends_span(body: Iterable[bytes], span: trace.Span) -> Iterator[bytes]:
    """The app's answer body, ending the request's span when the server closes it (or, for a
    server that never does, when it is dropped)."""
    try:
        yield from body
    finally:
        try:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        finally:
            span.end()


def _extract(environ: dict[str, Any]) -> context.Context | None:
    """The parent context in the request's headers, or None when it carries none of the
    propagators' headers (most requests: the extract, which costs more than the rest of
    the decision, is skipped)."""
    if not any(key in environ for key in _environ_keys(propagate.get_global_textmap())):
        return None
    return propagate.extract(environ, getter=_WSGI_GETTER)


_keys_of: tuple[object, tuple[str, ...]] = (None, ())


def _environ_keys(propagator: Any) -> tuple[str, ...]:
    """The environ keys of the propagator's headers (computed once per propagator)."""
    global _keys_of
    known, keys = _keys_of
    if propagator is not known:
        keys = tuple("HTTP_" + name.upper().replace("-", "_") for name in sorted(propagator.fields))
        _keys_of = (propagator, keys)
    return keys


class _WsgiGetter:
    """Reads propagation headers out of a WSGI environ (`traceparent` → `HTTP_TRACEPARENT`)."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        """The header's value as a one-item list, or None when absent."""
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        """The request's header names, lower-case and dashed."""
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


_WSGI_GETTER = _WsgiGetter()


def _trace_headers(span_context: SpanContext) -> list[tuple[str, str]]:
    trace_id = f"{span_context.trace_id:032x}"
    return [(TRACE_ID_HEADER, trace_id),
            ("traceparent", f"00-{trace_id}-{span_context.span_id:016x}-"
                            f"{int(span_context.trace_flags):02x}")]


def _answer_with(start_response: StartResponse,
                 ours: list[tuple[str, str]]) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, _with_ours(headers, ours), exc_info)

    return start


def _with_ours(headers: list[tuple[str, str]],
               ours: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # An upstream's own trace headers would otherwise reach the client twice.
    return [item for item in headers if item[0].lower() not in _OURS] + ours


def _record_status(span: trace.Span, code: int) -> None:
    span.set_attribute("http.status_code", code)
    if code >= 500 and span.status.status_code is StatusCode.UNSET:
        span.set_status(Status(StatusCode.ERROR))  # kept: an exception's message


def _failed(span: trace.Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


def _status_code(status: str) -> int | None:
    try:
        return int(status[:3])
    except (TypeError, ValueError):
        return None
