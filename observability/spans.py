"""Traces read back into one model, from span files (OTLP JSON) or Jaeger's query API.

`SpanFiles(path)` and `JaegerQuery(url)` both answer `traces(service=..., limit=...)` and
`trace(id_or_prefix)`; `select_traces` filters and orders; `to_jaeger_json` writes the file
Jaeger's UI opens with "JSON File".
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OTLP_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer",
              5: "consumer"}
OTLP_STATUS = {0: "unset", 1: "ok", 2: "error"}


class TraceNotFound(LookupError):
    """No trace has this id (or id prefix)."""


class AmbiguousTraceId(LookupError):
    """More than one trace starts with this prefix."""


@dataclass(frozen=True)
class SpanEvent:
    """Something that happened during a span (a breaker change, a retry, an exception)."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Span:
    """One operation in one service."""

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    name: str
    start_ns: int
    end_ns: int
    kind: str = "internal"
    status: str = "unset"
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    @property
    def instance(self) -> str:
        """The service instance that recorded it (`service.instance.id`), or the service."""
        return str(self.resource.get("service.instance.id") or self.service)

    @property
    def is_error(self) -> bool:
        return self.status == "error"


@dataclass
class Trace:
    """Every span of one trace id, with the tree they form."""

    trace_id: str
    spans: list[Span]

    @property
    def start_ns(self) -> int:
        return min(span.start_ns for span in self.spans)

    @property
    def end_ns(self) -> int:
        return max(span.end_ns for span in self.spans)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    @property
    def roots(self) -> list[Span]:
        """Spans without a parent in this trace (one, unless spans are missing), oldest first."""
        ids = {span.span_id for span in self.spans}
        return sorted((s for s in self.spans if s.parent_id not in ids), key=lambda s: s.start_ns)

    @property
    def root(self) -> Span:
        return self.roots[0]

    @property
    def missing_parents(self) -> set[str]:
        """Parent span ids that spans name but the trace does not hold (not exported yet by
        the process that recorded them, or lost): the trace is incomplete while any remain."""
        ids = {span.span_id for span in self.spans}
        return {s.parent_id for s in self.spans if s.parent_id and s.parent_id not in ids}

    @property
    def complete(self) -> bool:
        """Whether every span's parent is in the trace (its root is the real root)."""
        return not self.missing_parents

    @property
    def services(self) -> list[str]:
        """The services taking part, in order of their first span."""
        ordered = sorted(self.spans, key=lambda s: s.start_ns)
        return list(dict.fromkeys(span.service for span in ordered))

    @property
    def has_error(self) -> bool:
        return any(span.is_error for span in self.spans)

    @property
    def status(self) -> str:
        return "error" if self.has_error else "ok"

    def walk(self) -> Iterator[tuple[int, Span]]:
        """Every span depth first, children by start time, with its depth in the tree."""
        children: dict[str | None, list[Span]] = {}
        for span in self.spans:
            children.setdefault(span.parent_id, []).append(span)

        def visit(span: Span, depth: int) -> Iterator[tuple[int, Span]]:
            yield depth, span
            for child in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns):
                yield from visit(child, depth + 1)

        for root in self.roots:
            yield from visit(root, 0)


def group_traces(spans: Iterable[Span]) -> list[Trace]:
    """Spans grouped by trace id (a span seen twice counts once), newest trace first."""
    by_trace: dict[str, dict[str, Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, {}).setdefault(span.span_id, span)
    traces = [Trace(trace_id, list(found.values())) for trace_id, found in by_trace.items()]
    return sorted(traces, key=lambda t: t.start_ns, reverse=True)


def select_traces(traces: Iterable[Trace], *, service: str | None = None, errors: bool = False,
                  slowest: int | None = None, limit: int | None = None) -> list[Trace]:
    """Traces touching `service`, only failed ones, the `slowest` N, at most `limit`."""
    chosen = [t for t in traces if (not service or service in t.services)
              and (not errors or t.has_error)]
    if slowest:
        chosen = sorted(chosen, key=lambda t: t.duration_ns, reverse=True)[:slowest]
    else:
        chosen.sort(key=lambda t: t.start_ns, reverse=True)
    return chosen[:limit] if limit else chosen


def find_by_prefix(traces: Iterable[Trace], prefix: str) -> Trace:
    """The one trace whose id starts with `prefix`."""
    prefix = prefix.strip().lower()
    matches = {t.trace_id: t for t in traces if t.trace_id.startswith(prefix)}
    if not matches:
        raise TraceNotFound(f"no trace id starts with {prefix!r}")
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5])
        raise AmbiguousTraceId(f"{len(matches)} traces start with {prefix!r}: {shown}")
    return next(iter(matches.values()))


# --- OTLP JSON (span files) ----------------------------------------------------------------

def _otlp_id(raw: str, length: int) -> str:
    """An id as lower-case hex; OTLP/JSON writes hex, the plain protobuf mapping base64."""
    raw = raw or ""
    if len(raw) == length and all(c in "0123456789abcdefABCDEF" for c in raw):
        return raw.lower()
    try:
        return base64.b64decode(raw, validate=True).hex()
    except (binascii.Error, ValueError):
        return raw.lower()


def _otlp_value(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_otlp_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _otlp_attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _otlp_attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: _otlp_value(item.get("value", {})) for item in items or ()}


def parse_otlp_json(document: Mapping[str, Any]) -> list[Span]:
    """The spans of one OTLP/JSON `ExportTraceServiceRequest`."""
    spans: list[Span] = []
    for resource_spans in document.get("resourceSpans", []):
        resource = _otlp_attributes(resource_spans.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                status = raw.get("status") or {}
                parent = raw.get("parentSpanId")
                spans.append(Span(
                    trace_id=_otlp_id(raw.get("traceId", ""), 32),
                    span_id=_otlp_id(raw.get("spanId", ""), 16),
                    parent_id=_otlp_id(parent, 16) if parent else None,
                    service=service,
                    name=raw.get("name", ""),
                    start_ns=int(raw.get("startTimeUnixNano", 0)),
                    end_ns=int(raw.get("endTimeUnixNano", 0)),
                    kind=OTLP_KINDS.get(_enum(raw.get("kind", 0), "SPAN_KIND_"), "internal"),
                    status=OTLP_STATUS.get(_enum(status.get("code", 0), "STATUS_CODE_"), "unset"),
                    status_message=status.get("message", ""),
                    attributes=_otlp_attributes(raw.get("attributes")),
                    events=[SpanEvent(e.get("name", ""), int(e.get("timeUnixNano", 0)),
                                      _otlp_attributes(e.get("attributes")))
                            for e in raw.get("events", [])],
                    resource=resource,
                ))
    return spans


def _enum(value: Any, prefix: str) -> int:
    """An OTLP enum written as a number or as its name (both are valid protobuf JSON)."""
    if isinstance(value, int):
        return value
    names = {"SPAN_KIND_": ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"],
             "STATUS_CODE_": ["UNSET", "OK", "ERROR"]}[prefix]
    word = str(value).removeprefix(prefix)
    return names.index(word) if word in names else 0


def read_span_file(path: Path) -> list[Span]:
    """The spans of one span file; a line cut short by a writer is skipped."""
    spans: list[Span] = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                spans.extend(parse_otlp_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
    return spans


class SpanFiles:
    """The traces in a folder of span files (`var/traces/`) or in one file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return sorted(self.path.glob("*.jsonl")) if self.path.is_dir() else []

    def traces(self, service: str | None = None, limit: int | None = None,
               errors: bool = False) -> list[Trace]:
        """Every trace in the files (filtering is left to `select_traces`)."""
        spans: list[Span] = []
        for path in self.files():
            spans.extend(read_span_file(path))
        return group_traces(spans)

    def trace(self, trace_id: str) -> Trace:
        """The trace with this id or unique id prefix."""
        return find_by_prefix(self.traces(), trace_id)


# --- Jaeger --------------------------------------------------------------------------------

def _jaeger_value(tag: Mapping[str, Any]) -> Any:
    value, kind = tag.get("value"), tag.get("type", "string")
    if kind == "int64":
        return int(value)
    if kind == "float64":
        return float(value)
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value


def _jaeger_tags(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {tag["key"]: _jaeger_value(tag) for tag in tags or ()}


def _jaeger_id(raw: str, length: int) -> str:
    return raw.lower().rjust(length, "0")


def parse_jaeger(document: Mapping[str, Any]) -> list[Trace]:
    """The traces of a Jaeger query API answer (`{"data": [...]}`), or of an exported file."""
    spans: list[Span] = []
    for raw_trace in document.get("data") or []:
        processes = raw_trace.get("processes") or {}
        for raw in raw_trace.get("spans") or []:
            process = processes.get(raw.get("processID")) or raw.get("process") or {}
            tags = _jaeger_tags(raw.get("tags"))
            kind = str(tags.pop("span.kind", "internal"))
            code = str(tags.pop("otel.status_code", "")).lower()
            message = str(tags.pop("otel.status_description", ""))
            error = tags.pop("error", False) in (True, "true")
            parents = [r for r in raw.get("references") or () if r.get("refType") == "CHILD_OF"]
            start_us, duration_us = int(raw.get("startTime", 0)), int(raw.get("duration", 0))
            events = []
            for entry in raw.get("logs") or []:
                fields = _jaeger_tags(entry.get("fields"))
                name = str(fields.pop("event", fields.pop("message", "log")))
                events.append(SpanEvent(name, int(entry.get("timestamp", 0)) * 1000, fields))
            spans.append(Span(
                trace_id=_jaeger_id(raw.get("traceID", ""), 32),
                span_id=_jaeger_id(raw.get("spanID", ""), 16),
                parent_id=_jaeger_id(parents[0]["spanID"], 16) if parents else None,
                service=str(process.get("serviceName", "unknown")),
                name=raw.get("operationName", ""),
                start_ns=start_us * 1000,
                end_ns=(start_us + duration_us) * 1000,
                kind=kind,
                status="error" if error or code == "error" else (code or "unset"),
                status_message=message,
                attributes=tags,
                events=events,
                resource={"service.name": process.get("serviceName", "unknown"),
                          **_jaeger_tags(process.get("tags"))},
            ))
    return group_traces(spans)


class JaegerQuery:
    """Traces from a Jaeger query service (`http://localhost:16686`)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(self.url + path + query, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            return json.load(response)

    def services(self) -> list[str]:
        """The services Jaeger has spans of."""
        return [s for s in self._get("/api/services").get("data") or [] if not s.startswith("jaeger")]

    def traces(self, service: str | None = None, limit: int | None = None,
               errors: bool = False) -> list[Trace]:
        """Recent traces of `service` (of every service when None)."""
        found: dict[str, Trace] = {}
        for name in [service] if service else self.services():
            params: dict[str, Any] = {"service": name, "limit": limit or 20}
            if errors:
                params["tags"] = json.dumps({"error": "true"})
            for item in parse_jaeger(self._get("/api/traces", params)):
                found.setdefault(item.trace_id, item)
        return group_traces(span for item in found.values() for span in item.spans)

    def trace(self, trace_id: str) -> Trace:
        """The trace with this id; a shorter prefix is looked for among recent traces."""
        trace_id = trace_id.strip().lower()
        if len(trace_id) in (16, 32):
            try:
                return find_by_prefix(parse_jaeger(self._get(f"/api/traces/{trace_id}")),
                                      trace_id.rjust(32, "0"))
            except urllib.error.HTTPError as error:
                if error.code != 404:
                    raise
                raise TraceNotFound(f"Jaeger has no trace {trace_id}") from None
        return find_by_prefix(self.traces(limit=200), trace_id)


# --- export --------------------------------------------------------------------------------

def _jaeger_tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if not isinstance(value, str):
        value = json.dumps(value)
    return {"key": key, "type": "string", "value": value}


def to_jaeger_json(traces: Iterable[Trace]) -> dict[str, Any]:
    """Traces in Jaeger's own JSON (`{"data": [{"traceID", "spans", "processes"}]}`)."""
    data = []
    for item in traces:
        processes: dict[str, dict[str, Any]] = {}
        keys: dict[tuple[str, str], str] = {}
        spans = []
        for span in sorted(item.spans, key=lambda s: s.start_ns):
            process_key = (span.service, json.dumps(span.resource, sort_keys=True, default=str))
            if process_key not in keys:
                keys[process_key] = f"p{len(keys) + 1}"
                processes[keys[process_key]] = {
                    "serviceName": span.service,
                    "tags": [_jaeger_tag(k, v) for k, v in span.resource.items()
                             if k != "service.name"],
                }
            tags = [_jaeger_tag(k, v) for k, v in span.attributes.items()]
            tags.append(_jaeger_tag("span.kind", span.kind))
            if span.status != "unset":
                tags.append(_jaeger_tag("otel.status_code", span.status.upper()))
            if span.status_message:
                tags.append(_jaeger_tag("otel.status_description", span.status_message))
            if span.is_error:
                tags.append(_jaeger_tag("error", True))
            spans.append({
                "traceID": item.trace_id,
                "spanID": span.span_id,
                "operationName": span.name,
                "references": ([{"refType": "CHILD_OF", "traceID": item.trace_id,
                                 "spanID": span.parent_id}] if span.parent_id else []),
                "startTime": span.start_ns // 1000,
                "duration": span.duration_ns // 1000,
                "tags": tags,
                "logs": [{"timestamp": event.time_ns // 1000,
                          "fields": [_jaeger_tag("event", event.name),
                                     *(_jaeger_tag(k, v) for k, v in event.attributes.items())]}
                         for event in span.events],
                "processID": keys[process_key],
                "warnings": None,
                "flags": 1,
            })
        data.append({"traceID": item.trace_id, "spans": spans, "processes": processes,
                     "warnings": None})
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}


def open_source(jaeger: str | None = None, directory: str | Path | None = None
                ) -> SpanFiles | JaegerQuery:
    """Where to read traces: `jaeger` if given, else `directory`, else `BREAKWATER_JAEGER_URL`,
    else the stack's span files (`var/traces/`)."""
    from observability.settings import TracingSettings

    if jaeger:
        return JaegerQuery(jaeger)
    if directory:
        return SpanFiles(Path(directory))
    settings = TracingSettings.from_env()
    if settings.jaeger_url:
        return JaegerQuery(settings.jaeger_url)
    return SpanFiles(settings.traces_dir)
