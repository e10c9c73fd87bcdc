"""Resilience made visible in traces: breaker, bulkhead, retry and fallback events on spans,
and the experiment runner's own spans marking when a fault started and ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider, format_trace_id

BREAKER_STATE = "breakwater.breaker.state"
BREAKER_REJECTED = "breakwater.breaker.rejected"
BULKHEAD_REJECTED = "breakwater.bulkhead.rejected"
DEADLINE_EXCEEDED = "breakwater.deadline.exceeded"
RETRY = "breakwater.retry"
EJECTED = "breakwater.instance.ejected"
UPSTREAM_FAILURE = "breakwater.upstream.failure"
FALLBACK = "breakwater.fallback"
FAULT_START = "breakwater.fault.start"
FAULT_END = "breakwater.fault.end"
EXPERIMENT_TRACER = "breakwater.experiments"

AttributeValue = str | bool | int | float


def _clean(fields: Mapping[str, Any], prefix: str = "breakwater.") -> dict[str, AttributeValue]:
    """Event fields as span attributes: namespaced, and only the types OpenTelemetry takes."""
    out: dict[str, AttributeValue] = {}
    for key, value in fields.items():
        if value is None:
            continue
        name = key if key.startswith(prefix) else prefix + key
        out[name] = value if isinstance(value, str | bool | int | float) else str(value)
    return out


class TracingListener:
    """A `ResilientClient` listener: what the client does becomes events on the current span.

    `ResilientClient(listeners=[TracingListener()])`. Every event goes on the span of the
    request being served (or the caller's own span), so a trace shows why a call failed fast.
    """

    def event(self, name: str, **fields: Any) -> None:
        """Record one client event (breaker_state_change, rejected, ejected, retried, ...)."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(span, **fields)
        else:
            span.add_event(f"breakwater.{name}", _clean(fields))

    @staticmethod
    def _on_breaker_state_change(span: Span, *, service: str = "", instance: str = "",
                                 old: str = "", new: str = "", **rest: Any) -> None:
        span.add_event(BREAKER_STATE, _clean({
            "upstream": service, "instance": instance, "breaker.from": old, "breaker.to": new,
            **rest}))

    @staticmethod
    def _on_rejected(span: Span, *, service: str = "", reason: str = "", **rest: Any) -> None:
        name = {"bulkhead_full": BULKHEAD_REJECTED,
                "deadline_exceeded": DEADLINE_EXCEEDED}.get(reason, BREAKER_REJECTED)
        span.add_event(name, _clean({"upstream": service, "reason": reason, **rest}))
        span.set_attribute("breakwater.rejected", reason)

    @staticmethod
    def _on_retried(span: Span, *, service: str = "", instance: str = "", reason: str = "",
                    **rest: Any) -> None:
        attempts = int(getattr(span, "attributes", {}).get("breakwater.retry.count", 0)) + 1
        span.add_event(RETRY, _clean({"upstream": service, "instance": instance,
                                      "reason": reason, "retry.attempt": attempts, **rest}))
        span.set_attribute("breakwater.retry.count", attempts)

    @staticmethod
    def _on_ejected(span: Span, **fields: Any) -> None:
        span.add_event(EJECTED, _clean({"upstream": fields.pop("service", ""), **fields}))

    @staticmethod
    def _on_failure(span: Span, **fields: Any) -> None:
        span.add_event(UPSTREAM_FAILURE, _clean(fields))

    @staticmethod
    def _on_chosen(span: Span, *, service: str = "", instance: str = "", **rest: Any) -> None:
        span.set_attribute("breakwater.upstream", service)
        span.set_attribute("breakwater.upstream.instance", instance)


def mark_fallback(kind: str, **fields: Any) -> None:
    """Note on the current span that a fallback answered (e.g. `mark_fallback("stale_cache")`)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(FALLBACK, kind)
        span.add_event(FALLBACK, _clean({"fallback.kind": kind, **fields}))


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def record_experiment_span(name: str, start: float, end: float,
                           attributes: Mapping[str, Any] | None = None, *,
                           error: str | None = None,
                           tracer_provider: TracerProvider | None = None) -> str | None:
    """Record a finished span from `start` to `end` (epoch seconds), e.g. a fault window.

    Returns its trace id (None when tracing is off). Fault start and end are events on it.
    """
    tracer = trace.get_tracer(EXPERIMENT_TRACER, tracer_provider=tracer_provider)
    span = tracer.start_span(name, start_time=_ns(start), attributes=_clean(attributes or {}))
    if not span.is_recording():
        return None
    span.add_event(FAULT_START, timestamp=_ns(start))
    span.add_event(FAULT_END, timestamp=_ns(end))
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=_ns(end))
    return format_trace_id(span.get_span_context().trace_id)


@contextmanager
def experiment_span(name: str, attributes: Mapping[str, Any] | None = None, *,
                    clock: Callable[[], float] = time.time,
                    tracer_provider: TracerProvider | None = None) -> Iterator[Span]:
    """A current span around part of an experiment (a fault being injected, a probe...).

    Marks its start and end as `breakwater.fault.start`/`.end` events; an exception sets
    the error status and is re-raised.
    """
    tracer = trace.get_tracer(EXPERIMENT_TRACER, tracer_provider=tracer_provider)
    with tracer.start_as_current_span(name, start_time=_ns(clock()),
                                      attributes=_clean(attributes or {})) as span:
        span.add_event(FAULT_START, timestamp=_ns(clock()))
        try:
            yield span
        finally:
            span.add_event(FAULT_END, timestamp=_ns(clock()))
