"""Where finished spans go: OTLP JSON span files, and a batch processor that is fork-safe.

A span file holds one OTLP/JSON `ExportTraceServiceRequest` a line (the protobuf JSON mapping
with hex trace and span ids, as the OpenTelemetry Collector's file exporter writes it), one file
per process, rotated when it grows past a size.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

ExporterFactory = Callable[[], SpanExporter]


def any_value(value: Any) -> dict[str, Any]:
    """An attribute value as an OTLP `AnyValue` in its JSON form."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in the protobuf JSON mapping
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Attributes as a list of OTLP `KeyValue`s."""
    return [{"key": key, "value": any_value(value)} for key, value in (attributes or {}).items()]


def _span_json(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
    }
    if span.parent is not None:
        out["parentSpanId"] = f"{span.parent.span_id:016x}"
    out["name"] = span.name
    out["kind"] = span.kind.value + 1  # the SDK's SpanKind starts at INTERNAL=0, OTLP's at 1
    out["startTimeUnixNano"] = str(span.start_time or 0)
    out["endTimeUnixNano"] = str(span.end_time or 0)
    if span.attributes:
        out["attributes"] = key_values(span.attributes)
    if span.events:
        out["events"] = [
            {"timeUnixNano": str(event.timestamp), "name": event.name,
             **({"attributes": key_values(event.attributes)} if event.attributes else {})}
            for event in span.events
        ]
    if span.links:
        out["links"] = [
            {"traceId": f"{link.context.trace_id:032x}", "spanId": f"{link.context.span_id:016x}",
             **({"attributes": key_values(link.attributes)} if link.attributes else {})}
            for link in span.links
        ]
    out["status"] = _status_json(span.status)
    return out


def _status_json(status: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if status.status_code.value:
        out["code"] = status.status_code.value  # UNSET=0, OK=1, ERROR=2 in both
    if status.description:
        out["message"] = status.description
    return out


def encode_spans_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Spans as one OTLP/JSON `ExportTraceServiceRequest`, grouped by resource and scope."""
    by_resource: dict[int, tuple[Any, dict[tuple[str, str], list[dict[str, Any]]]]] = {}
    for span in spans:
        resource, scopes = by_resource.setdefault(id(span.resource), (span.resource, {}))
        scope = span.instrumentation_scope
        key = (scope.name, scope.version or "") if scope else ("", "")
        scopes.setdefault(key, []).append(_span_json(span))
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": key_values(resource.attributes)},
                "scopeSpans": [
                    {"scope": {"name": name, **({"version": version} if version else {})},
                     "spans": encoded}
                    for (name, version), encoded in scopes.items()
                ],
            }
            for resource, scopes in by_resource.values()
        ]
    }


def encode_spans_text(spans: Sequence[ReadableSpan]) -> str:
    """`json.dumps(encode_spans_json(spans), separators=(",", ":"))`, written directly.

    Exporting is about half of what a recorded span costs its process, and most of that was
    building the nested dicts of every attribute for `json.dumps` to walk. This writes the same
    text from cached fragments instead: an attribute's `KeyValue` (most repeat from span to
    span: methods, routes, statements, status codes) and a resource's block are encoded once.
    """
    by_resource: dict[int, tuple[Any, dict[tuple[str, str], list[str]]]] = {}
    for span in spans:
        resource, scopes = by_resource.setdefault(id(span.resource), (span.resource, {}))
        scope = span.instrumentation_scope
        key = (scope.name, scope.version or "") if scope else ("", "")
        scopes.setdefault(key, []).append(_span_text(span))
    blocks = []
    for resource, scopes in by_resource.values():
        scope_blocks = ",".join(
            f'{{"scope":{_dumps({"name": name, **({"version": version} if version else {})})},'
            f'"spans":[{",".join(encoded)}]}}'
            for (name, version), encoded in scopes.items())
        blocks.append(f'{{"resource":{{"attributes":[{_key_values_text(resource.attributes)}]}},'
                      f'"scopeSpans":[{scope_blocks}]}}')
    return f'{{"resourceSpans":[{",".join(blocks)}]}}'


_dumps = json.JSONEncoder(separators=(",", ":")).encode
_FRAGMENT_LIMIT = 4096
_fragments: dict[tuple[str, type, Any], str] = {}


def _key_value_text(key: str, value: Any) -> str:
    kind = type(value)
    if kind in (str, int, float, bool):
        # The type too: True == 1, yet they encode differently.
        return _fragment((key, kind, value), lambda: {"key": key, "value": any_value(value)})
    return _dumps({"key": key, "value": any_value(value)})


def _name_text(name: str) -> str:
    return _fragment(("", str, name), lambda: name)


def _fragment(cache_key: tuple[str, type, Any], document: Callable[[], Any]) -> str:
    """The JSON text of `document()`, encoded once per `cache_key`."""
    text = _fragments.get(cache_key)
    if text is None:
        if len(_fragments) >= _FRAGMENT_LIMIT:
            _fragments.clear()  # unbounded values (ids in paths) must not grow it forever
        text = _fragments[cache_key] = _dumps(document())
    return text


def _key_values_text(attributes: Mapping[str, Any] | None) -> str:
    return ",".join(_key_value_text(k, v) for k, v in (attributes or {}).items())


def _span_text(span: ReadableSpan) -> str:
    context = span.context
    parent = span.parent
    parts = [f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}"']
    if parent is not None:
        parts.append(f',"parentSpanId":"{parent.span_id:016x}"')
    parts.append(f',"name":{_name_text(span.name)},"kind":{span.kind.value + 1},'
                 f'"startTimeUnixNano":"{span.start_time or 0}",'
                 f'"endTimeUnixNano":"{span.end_time or 0}"')
    if span.attributes:
        parts.append(f',"attributes":[{_key_values_text(span.attributes)}]')
    if span.events or span.links:
        rare = _span_json(span)  # events and links: the dict encoder, as written
        for field in ("events", "links"):
            if field in rare:
                parts.append(f',"{field}":{_dumps(rare[field])}')
    status = span.status
    if status.status_code.value or status.description:
        parts.append(f',"status":{_dumps(_status_json(status))}')
    else:
        parts.append(',"status":{}')
    parts.append("}")
    return "".join(parts)


class SpanFileExporter(SpanExporter):
    """Appends OTLP/JSON lines to `<directory>/<instance>-<pid>.jsonl`, rotating by size.

    Past `max_bytes` the file becomes `<name>.1.jsonl` (older ones shift up to `backups`, the
    oldest is dropped), so a long run keeps at most `(backups + 1) * max_bytes` per process.
    """

    def __init__(self, directory: Path, instance: str, *, max_bytes: int = 16 * 1024 * 1024,
                 backups: int = 2, pid: int | None = None) -> None:
        self.directory = Path(directory)
        self.stem = f"{_safe_name(instance)}-{pid or os.getpid()}"
        self.path = self.directory / f"{self.stem}.jsonl"
        self.max_bytes, self.backups = max_bytes, backups
        self._lock = threading.Lock()
        self._file: Any = None
        self._size = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write one line holding every span of the batch."""
        if not spans:
            return SpanExportResult.SUCCESS
        line = (encode_spans_text(spans) + "\n").encode()
        with self._lock:
            try:
                if self._file is None:
                    self._open()
                if self._size and self._size + len(line) > self.max_bytes:
                    self._rotate()
                self._file.write(line)
                self._file.flush()
                self._size += len(line)
            except OSError:
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open across exports
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self._file.close()
        self._file = None
        older = [self.directory / f"{self.stem}.{n}.jsonl" for n in range(1, self.backups + 1)]
        if older:
            older[-1].unlink(missing_ok=True)
            for newer, elder in zip(reversed(older[:-1]), reversed(older[1:]), strict=True):
                if newer.exists():
                    newer.replace(elder)
            self.path.replace(older[0])
        else:
            self.path.unlink(missing_ok=True)
        self._open()

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every line is flushed as it is written."""
        return True


def _forget_in_child(processor: weakref.ref[PerProcessSpanProcessor]) -> None:
    alive = processor()
    if alive is not None:
        alive._processor, alive._pid = None, 0


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "process"


class PerProcessSpanProcessor(SpanProcessor):
    """A batch processor and exporter made in each process that ends a span.

    Created after `fork()`, never inherited: a gunicorn master that set tracing up before
    forking hands its workers no exporter thread, queue, file or connection of its own.
    """

    def __init__(self, exporter_factory: ExporterFactory,
                 processor_factory: Callable[[SpanExporter], SpanProcessor] = BatchSpanProcessor
                 ) -> None:
        self._exporter_factory, self._processor_factory = exporter_factory, processor_factory
        self._lock = threading.Lock()
        self._pid = 0
        self._processor: SpanProcessor | None = None
        # A forked child forgets its parent's processor at once, so `on_end` need not ask
        # for the process id on every span.
        os.register_at_fork(after_in_child=functools.partial(_forget_in_child, weakref.ref(self)))

    def current(self) -> SpanProcessor:
        """This process's processor, made on first use."""
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._processor = self._processor_factory(self._exporter_factory())
                    self._pid = pid
        return self._processor  # type: ignore[return-value]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the finished span for this process's exporter."""
        (self._processor or self.current()).on_end(span)

    def _own(self) -> SpanProcessor | None:
        return self._processor if self._pid == os.getpid() else None

    def shutdown(self) -> None:
        """Export what is queued and stop (only this process's own processor)."""
        processor = self._own()
        if processor is not None:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now."""
        processor = self._own()
        return True if processor is None else processor.force_flush(timeout_millis)
