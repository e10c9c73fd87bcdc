"""Span files: valid OTLP JSON, thread-safe appends, bounded by rotation; the settings."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.exporters import SpanFileExporter, encode_spans_json, encode_spans_text
from observability.settings import TracingSettings
from observability.spans import read_span_file
from observability.tracing import build_provider


def _finished_spans(memory) -> list:
    provider, exporter = memory
    tracer = provider.get_tracer("test.scope", "1.2")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER,
                                      attributes={"http.status_code": 503, "ok": False}) as parent:
        parent.add_event("breakwater.breaker.state", {"breakwater.breaker.to": "open"})
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT,
                                          attributes={"rows": 1.5, "tags": ["a", "b"]}):
            pass
        parent.set_status(Status(StatusCode.ERROR, "cart unavailable"))
    return list(exporter.get_finished_spans())


def _hex_ids_to_base64(node):
    if isinstance(node, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode()
                    if k in ("traceId", "spanId", "parentSpanId") else _hex_ids_to_base64(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def test_span_lines_are_the_protobuf_json_mapping_of_export_requests(memory) -> None:
    spans = _finished_spans(memory)

    ours = ParseDict(_hex_ids_to_base64(encode_spans_json(spans)), ExportTraceServiceRequest())

    sdk = encode_spans(spans)  # what the OTLP exporter itself sends
    ours_spans = [s for rs in ours.resource_spans for ss in rs.scope_spans for s in ss.spans]
    sdk_spans = [s for rs in sdk.resource_spans for ss in rs.scope_spans for s in ss.spans]
    fields = ("trace_id", "span_id", "parent_span_id", "name", "kind", "start_time_unix_nano",
              "end_time_unix_nano", "attributes", "events", "status")
    for mine, theirs in zip(ours_spans, sdk_spans, strict=True):
        for name in fields:
            assert getattr(mine, name) == getattr(theirs, name), name
    assert ours.resource_spans[0].resource.attributes == sdk.resource_spans[0].resource.attributes
    assert ours.resource_spans[0].scope_spans[0].scope.name == "test.scope"


def _varied_spans() -> list:
    """Spans from two resources and three scopes, with every attribute type, events, links,
    unicode, an unset status, an error without a message and one with."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link

    exporter = InMemorySpanExporter()
    for service in ("cart", "product"):
        provider = TracerProvider(resource=Resource.create({"service.name": service, "n": 2}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for scope, version in (("breakwater.server", None), ("other", "0.1")):
            tracer = provider.get_tracer(scope, version)
            with tracer.start_as_current_span("GET /réservé \"q\"", kind=SpanKind.SERVER, attributes={
                    "flag": True, "one": 1, "also_one": True, "ratio": 0.25, "big": 2**62,
                    "text": "naïve\n\u2028", "tags": ("a", "b"), "nums": (1, 2),
                    "flags": (True, False)}) as parent:
                parent.add_event("retry", {"attempt": 2})
                parent.add_event("bare")
                with tracer.start_as_current_span("SELECT", links=[
                        Link(parent.get_span_context(), {"why": "batch"}),
                        Link(parent.get_span_context())]) as child:
                    child.set_status(Status(StatusCode.ERROR))
                parent.set_status(Status(StatusCode.ERROR, "cart unavailable ✗"))
            with tracer.start_as_current_span("plain", attributes={"flag": 1, "one": True,
                                                                   "ratio": 1}):
                pass  # the same keys with values equal to the others' yet of other types
    return list(exporter.get_finished_spans())


def test_the_direct_text_encoder_writes_exactly_what_json_dumps_would() -> None:
    spans = _varied_spans()

    for batch in (spans, spans[:1], spans[::-1], spans + spans):  # the fragment cache warm too
        assert encode_spans_text(batch) == json.dumps(encode_spans_json(batch),
                                                      separators=(",", ":"))


def test_the_file_reads_back_into_the_span_model(memory, tmp_path: Path) -> None:
    exporter = SpanFileExporter(tmp_path, "cart-1", pid=42)

    exporter.export(_finished_spans(memory))

    assert exporter.path == tmp_path / "cart-1-42.jsonl"
    child, parent = read_span_file(exporter.path)
    assert (parent.name, parent.kind, parent.status, parent.status_message) == (
        "GET /cart", "server", "error", "cart unavailable")
    assert child.parent_id == parent.span_id and child.kind == "client"
    assert parent.attributes == {"http.status_code": 503, "ok": False}
    assert child.attributes == {"rows": 1.5, "tags": ["a", "b"]}
    assert parent.events[0].name == "breakwater.breaker.state"
    assert parent.events[0].attributes == {"breakwater.breaker.to": "open"}
    assert parent.service == "test"


def test_concurrent_exports_never_interleave(memory, tmp_path: Path) -> None:
    spans = _finished_spans(memory)
    exporter = SpanFileExporter(tmp_path, "cart-1")

    def write() -> None:
        for _ in range(50):
            exporter.export(spans)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = exporter.path.read_text().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["resourceSpans"] for line in lines)


def test_files_rotate_and_stay_bounded(memory, tmp_path: Path) -> None:
    spans = _finished_spans(memory)
    exporter = SpanFileExporter(tmp_path, "cart-1", pid=7, max_bytes=4000, backups=2)
    line_size = len(json.dumps(encode_spans_json(spans), separators=(",", ":"))) + 1

    for _ in range(40):
        exporter.export(spans)
    exporter.shutdown()

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["cart-1-7.1.jsonl", "cart-1-7.2.jsonl", "cart-1-7.jsonl"]
    assert all(p.stat().st_size <= max(4000, line_size) for p in tmp_path.iterdir())
    assert all(read_span_file(p) for p in tmp_path.iterdir())


def test_exporter_choice_follows_the_environment(tmp_path: Path) -> None:
    assert TracingSettings.from_env({"BREAKWATER_VAR_DIR": str(tmp_path)}).traces_dir == tmp_path / "traces"
    assert TracingSettings.from_env({}).exporter == "file"
    otlp = TracingSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318/"})
    assert (otlp.exporter, otlp.otlp_traces_endpoint) == ("otlp", "http://jaeger:4318/v1/traces")
    specific = TracingSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                                         "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b/traces"})
    assert specific.otlp_traces_endpoint == "http://b/traces"
    assert not TracingSettings.from_env({"OTEL_TRACES_EXPORTER": "none",
                                         "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318"}).enabled
    assert not TracingSettings.from_env({"OTEL_SDK_DISABLED": "true"}).enabled
    with pytest.raises(ValueError, match="zipkin"):
        TracingSettings.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


@pytest.mark.parametrize(("sampler", "arg", "description"), [
    ("always_off", "", "AlwaysOffSampler"),
    ("traceidratio", "0.25", "TraceIdRatioBased{0.25}"),
    ("parentbased_traceidratio", "0.5", "ParentBased{root:TraceIdRatioBased{0.5}"),
])
def test_the_sdk_reads_the_standard_sampler_variables(monkeypatch: pytest.MonkeyPatch, sampler: str,
                                                      arg: str, description: str) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)

    provider, _ = build_provider("product", instance_id="product-2",
                                 settings=TracingSettings.from_env({}))

    assert isinstance(provider, TracerProvider)
    assert provider.sampler.get_description().startswith(description)
    assert provider.resource.attributes["service.instance.id"] == "product-2"
