"""The sampling decision of a server request, taken before any span is made.

`Presampler` asks the provider's own sampler once per request; `Presampled` then runs the
instrumented app for a request that is sampled and the uninstrumented one, in the context of
a non-recording span, for a request that is not (docs/HOT_PATHS.md). `ReservedTraceIds` is
the provider's id generator: a sampled root keeps the trace id it was decided for, so the
SDK, asking the sampler again, decides the same way (a trace-id ratio would otherwise be
applied twice). `observability.tracing` puts these in front of the Flask and WSGI
instrumentations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

_RESERVED: ContextVar[int] = ContextVar("breakwater_reserved_trace_id", default=0)


class ReservedTraceIds(RandomIdGenerator):
    """Random ids; the next trace id is the reserved one when there is one (used once)."""

    def generate_trace_id(self) -> int:
        """The reserved trace id of this context, once; a random one otherwise."""
        reserved = _RESERVED.get()
        if reserved:
            _RESERVED.set(0)
            return reserved
        return super().generate_trace_id()


@contextlib.contextmanager
def reserved_trace_id(trace_id: int) -> Iterator[None]:
    """Make `trace_id` the next root's trace id within the block (0: reserve nothing)."""
    if not trace_id:
        yield
        return
    token = _RESERVED.set(trace_id)
    try:
        yield
    finally:
        _RESERVED.reset(token)


class Presampler:
    """The sampling decision of a server request, taken before any span is made.

    It asks the provider's own sampler (Breakwater's default, or what `OTEL_TRACES_SAMPLER`
    chose) with the request's parent context, method and path, which is all the samplers read.
    A request that will not be sampled then skips the server instrumentation entirely: making
    a non-recording span costs as much as the attributes, context and hooks of a real one, and
    most catalog reads are not sampled. A root that is sampled keeps the trace id it was
    decided for (`ReservedTraceIds`), so the instrumentation's own decision agrees.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def decide(self, environ: dict[str, Any]) -> tuple[SpanContext | None, int]:
        """(the context of an unsampled request, 0), or (None, the trace id to reserve for a
        sampled root; 0 when the request continues a trace)."""
        parent = propagate.extract(environ, getter=wsgi_getter)
        parent_span = trace.get_current_span(parent).get_span_context()
        method = environ.get("REQUEST_METHOD") or "GET"
        path = environ.get("PATH_INFO") or "/"
        ids = self.provider.id_generator
        trace_id = parent_span.trace_id if parent_span.is_valid else ids.generate_trace_id()
        result = self.provider.sampler.should_sample(
            parent, trace_id, f"{method} {path}", SpanKind.SERVER,
            {"http.request.method": method, "url.path": path})
        if result.decision is not Decision.DROP:
            return None, 0 if parent_span.is_valid else trace_id
        return SpanContext(trace_id, ids.generate_span_id(), is_remote=False,
                           trace_flags=TraceFlags(TraceFlags.DEFAULT),
                           trace_state=result.trace_state), 0


UNSAMPLED_ENVIRON_KEY = "breakwater.unsampled"


class Presampled:
    """`traced` for a request the sampler samples, `plain` (the same app, uninstrumented) in
    the context of an unsampled one: a non-recording span carrying its trace id (propagated
    downstream with the sampled flag off, answered as `X-Trace-Id`, written into every log
    line) with every instrumentation off while the app runs, so its SQL statements and HTTP
    calls make no spans either."""

    def __init__(self, traced: Callable[..., Any], plain: Callable[..., Any],
                 presampler: Presampler, excluded_paths: Iterable[str]) -> None:
        self.traced, self.plain, self.presampler = traced, plain, presampler
        self.excluded_paths = frozenset(excluded_paths)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") in self.excluded_paths:
            return self.traced(environ, start_response)  # which makes no span for them
        unsampled, trace_id = self.presampler.decide(environ)
        if unsampled is None:
            with reserved_trace_id(trace_id):
                return self.traced(environ, start_response)
        environ[UNSAMPLED_ENVIRON_KEY] = True
        # Flask's teardown (the database connection back to its pool included) and the
        # gateway's upstream call run inside the call, so the whole request is in the scope.
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(unsampled)))
        try:
            with suppress_instrumentation():
                return self.plain(environ, start_response)
        finally:
            context.detach(token)
