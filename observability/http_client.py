"""Client spans for the resilient client's calls, shaped as the urllib3 instrumentation's were.

The resilient client sends through its own keep-alive transport (`services.common.transport`),
which no official instrumentation knows, so each attempt's span is made here: kind client,
named `GET /api/v1/products/{id}`, with `http.method`, `http.url`, `http.status_code` and
`breakwater.instance` (the conventions the urllib3 instrumentation uses by default), an error
status for a 4xx or 5xx answer or an exception, and exactly one set of propagation headers:
the span's own, replacing whatever the caller's headers held.

Nothing happens until `use_tracer_provider` runs (tracing on, from `init_tracing`), while
instrumentation is suppressed (an unsampled request: `observability.presampling`), or for a
probe path (`/healthz`, `/readyz`, `/metrics`), which gets no span, as probes get no server span.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import (
    http_status_to_status_code,
    is_http_instrumentation_enabled,
)
from opentelemetry.trace import SpanKind, Status

INSTANCE_ATTRIBUTE = "breakwater.instance"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# A numeric path segment: span names say `{id}` instead, so one route is one name.
NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")
_tracer: trace.Tracer | None = None
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


class Destination(Protocol):
    """Where the call goes (the transport's pool): `scheme://host:port`."""

    origin: str


def use_tracer_provider(provider: trace.TracerProvider) -> None:
    """Make client spans with `provider` from now on (the first provider set stays)."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("breakwater.http_client", tracer_provider=provider)


def client_span(method: str, destination: Destination, target: str,
                headers: MutableMapping[str, str]) -> contextlib.AbstractContextManager[Any]:
    """A context for one attempt: yields its span (propagated in `headers`), or None when
    this call gets no span."""
    tracer = _tracer
    if tracer is None or not is_http_instrumentation_enabled():
        return _NO_SPAN
    path = target.split("?", 1)[0] or "/"
    if path in PROBE_PATHS:
        return _NO_SPAN
    return _span(tracer, method, destination, target, path, headers)


@contextlib.contextmanager
def _span(tracer: trace.Tracer, method: str, destination: Destination, target: str, path: str,
          headers: MutableMapping[str, str]) -> Iterator[trace.Span]:
    base = destination.origin
    attributes = {"http.method": method, "http.url": base + target, INSTANCE_ATTRIBUTE: base}
    with tracer.start_as_current_span(span_name(method, path), kind=SpanKind.CLIENT,
                                      attributes=attributes) as span:
        drop_trace_context(headers)
        propagate.inject(headers)
        yield span


def span_name(method: str, path: str) -> str:
    """`GET /api/v1/orders/{id}`: one name per route, numeric ids folded."""
    return f"{method} {NUMERIC_SEGMENT.sub('/{id}', path)}"


def drop_trace_context(headers: MutableMapping[str, str]) -> None:
    """Remove every spelling of the propagators' headers, so the inject that follows is the
    only trace context sent."""
    fields = {name.lower() for name in propagate.get_global_textmap().fields}
    for key in [k for k in headers if k.lower() in fields]:
        del headers[key]


def record_status(span: trace.Span | None, status: int) -> None:
    """The answer's status on the attempt's span (an error status from 400 up)."""
    if span is None or not span.is_recording():
        return
    span.set_attribute("http.status_code", status)
    span.set_status(Status(http_status_to_status_code(status, server_span=False)))
