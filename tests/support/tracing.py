"""The test process's own tracing: set up once, before any test, the same in every worker.

Apps a test builds in-process (the gateway in a thread, a service's `create_app`) are traced by
the process they run in, and tracing is set up once per process. Without this, the first app
built in a worker would choose it for every later test there: its exporter, and Breakwater's
default sampler, which drops a root client span. The test's own `requests` calls would then
carry a "not sampled" trace context into the traced processes other tests start, and those would
record nothing of the request.

Here the test process is a traced client: a call it makes with no span around it starts a
sampled trace, and what its in-process apps serve is sampled as Breakwater samples. Spans are
dropped at export: tests that read spans make a tracer provider of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import SpanKind

from observability.sampling import default_sampler


class TracedClientSampler(Sampler):
    """A root client span is sampled; everything else as Breakwater's default sampler says."""

    def __init__(self) -> None:
        self.default = default_sampler()

    def should_sample(self, parent_context: Any, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Any = None, links: Any = None,
                      trace_state: Any = None) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        chosen = ALWAYS_ON if kind is SpanKind.CLIENT and not parent.is_valid else self.default
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links,
                                    trace_state)

    def get_description(self) -> str:
        return f"TracedClientSampler{{{self.default.get_description()}}}"


class DiscardingExporter(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def trace_the_test_process() -> None:
    """Set this process's tracing up as described above (before any app does)."""
    from observability.settings import TracingSettings
    from observability.tracing import init_tracing

    init_tracing("pytest", exporter=DiscardingExporter(), sampler=TracedClientSampler(),
                 settings=TracingSettings.from_env({}))
