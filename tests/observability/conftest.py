"""Fixtures for the observability tests: traced processes, span files, an in-memory tracer."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from observability.spans import SpanFiles, Trace
from tests.support.processes import ROOT, RunningProcess, free_port, wait_until


@pytest.fixture
def memory() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider of this test only (the process-wide one stays untouched)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def tracing_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of a traced process: span files under `var_dir`, fast batches."""
    return {
        "BREAKWATER_VAR_DIR": str(var_dir),
        "OTEL_TRACES_EXPORTER": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., RunningProcess]]:
    """`start_service("back", env, downstream=None)` → a healthy traced_app process."""
    started: list[RunningProcess] = []

    def start(service: str, env: dict[str, str], downstream: str | None = None) -> RunningProcess:
        port = free_port()
        args = [sys.executable, "-m", "tests.observability.traced_app", "--service", service,
                "--port", str(port)]
        if downstream:
            args += ["--downstream", downstream]
        process = RunningProcess(args, env, tmp_path / f"{service}.log", f"http://127.0.0.1:{port}")
        started.append(process)
        process.wait_healthy(timeout=20)
        return process

    yield start
    for process in started:
        process.stop()


def wait_for_trace(folder: Path, trace_id: str, spans: int, timeout: float = 10.0) -> Trace:
    """Poll the span files until the trace has at least `spans` spans."""

    def complete() -> Trace | None:
        found = [t for t in SpanFiles(folder).traces() if t.trace_id == trace_id]
        return found[0] if found and len(found[0].spans) >= spans else None

    return wait_until(complete, timeout=timeout, message=f"{spans} spans of {trace_id}")  # type: ignore[return-value]
