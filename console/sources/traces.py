"""The slowest and the failed recent traces, and any one of them as a waterfall.

In local mode spans come from the span files (`observability.spans`' OTLP JSON parser), read
incrementally: each poll parses only the lines written since the last one, and only the last
few minutes are kept. With a Jaeger URL they come from Jaeger's query API.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from observability.spans import (
    JaegerQuery,
    Span,
    SpanFiles,
    Trace,
    TraceNotFound,
    group_traces,
    parse_otlp_json,
)

BACKUP = re.compile(r"\.\d+\.jsonl$")
FIRST_READ_BYTES = 4 * 1024 * 1024
SHOWN = 8


class SpanTail:
    """Recent spans of a folder of span files, read a few new lines at a time."""

    def __init__(self, folder: Path, keep_seconds: float = 600.0, max_traces: int = 4000,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.keep_seconds, self.max_traces, self.clock = keep_seconds, max_traces, clock
        self._offsets: dict[int, int] = {}  # inode -> bytes read
        self._spans: dict[str, dict[str, Span]] = {}
        self._scanned = False

    def read(self) -> None:
        """Parse what was appended since the last read; forget traces older than kept."""
        files = sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []
        for path in files:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # rotated away meanwhile
            offset = self._offsets.get(stat.st_ino)
            aligned = True
            if offset is None:
                if self._scanned and BACKUP.search(path.name):
                    continue  # a file read before under its current name
                offset = max(0, stat.st_size - FIRST_READ_BYTES) if not self._scanned else 0
                aligned = offset == 0
            if stat.st_size < offset:
                offset = 0  # truncated
            self._offsets[stat.st_ino] = self._read_from(path, offset, aligned)
        self._scanned = True
        self._prune()

    def _read_from(self, path: Path, offset: int, aligned: bool) -> int:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return offset
        end = data.rfind(b"\n")
        if end < 0:
            return offset  # no complete line yet
        lines = data[: end + 1].split(b"\n")
        if not aligned:
            lines = lines[1:]  # started in the middle of a line
        for line in lines:
            if not line.strip():
                continue
            try:
                spans = parse_otlp_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue
            for span in spans:
                self._spans.setdefault(span.trace_id, {})[span.span_id] = span
        return offset + end + 1

    def _prune(self) -> None:
        horizon = (self.clock() - self.keep_seconds) * 1e9
        ends = {tid: max(s.end_ns for s in spans.values()) for tid, spans in self._spans.items()}
        for trace_id in [t for t, end in ends.items() if end < horizon]:
            del self._spans[trace_id]
            del ends[trace_id]
        if len(self._spans) > self.max_traces:
            for trace_id in sorted(ends, key=ends.get)[: len(self._spans) - self.max_traces]:
                del self._spans[trace_id]

    def traces(self) -> list[Trace]:
        """Every trace kept, newest first."""
        return group_traces(span for spans in self._spans.values() for span in spans.values())

    def trace(self, trace_id: str) -> Trace | None:
        """A kept trace by its full id."""
        spans = self._spans.get(trace_id)
        return Trace(trace_id, list(spans.values())) if spans else None


class TraceWatch:
    """Recent traces from span files, or from Jaeger when its URL is given."""

    def __init__(self, folder: Path, jaeger_url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.jaeger = JaegerQuery(jaeger_url, timeout=3.0) if jaeger_url else None
        self.folder = Path(folder)
        self.tail = None if self.jaeger else SpanTail(self.folder, clock=clock)

    @property
    def source(self) -> str:
        """Where traces come from, in words."""
        return f"Jaeger at {self.jaeger.url}" if self.jaeger else f"span files in {self.folder}"

    def poll(self) -> dict[str, Any]:
        """The slowest and the failed recent traces (raises OSError when Jaeger is away)."""
        if self.jaeger is not None:
            found = self.jaeger.traces(limit=40)
        else:
            assert self.tail is not None
            self.tail.read()
            found = self.tail.traces()
        slowest = sorted(found, key=lambda t: t.duration_ns, reverse=True)[:SHOWN]
        failed = [t for t in found if t.has_error][:SHOWN]
        return {"source": self.source, "count": len(found),
                "slowest": [summary(t) for t in slowest], "failed": [summary(t) for t in failed]}

    def trace(self, trace_id: str) -> Trace:
        """One trace by id or unique prefix (TraceNotFound otherwise)."""
        if self.jaeger is not None:
            return self.jaeger.trace(trace_id)
        assert self.tail is not None
        kept = self.tail.trace(trace_id)
        if kept is not None:
            return kept
        return SpanFiles(self.folder).trace(trace_id)  # older: read every file once


def _status_code(span: Span) -> Any:
    return span.attributes.get("http.response.status_code") or \
        span.attributes.get("http.status_code")


def summary(item: Trace) -> dict[str, Any]:
    """One trace in a line: its root, services, duration, size and outcome."""
    root = item.root
    return {"id": item.trace_id, "name": root.name, "service": root.service,
            "services": item.services, "duration_ms": round(item.duration_ms, 2),
            "spans": len(item.spans), "start": item.start_ns / 1e9, "error": item.has_error,
            "status_code": _status_code(root), "incomplete": len(item.roots) > 1}


def waterfall(item: Trace) -> dict[str, Any]:
    """A trace laid out as a waterfall: every span with its depth, offset and duration (ms)."""
    start = item.start_ns
    rows = []
    for depth, span in item.walk():
        rows.append({
            "depth": depth, "service": span.service, "instance": span.instance,
            "name": span.name, "kind": span.kind, "status": span.status,
            "status_message": span.status_message,
            "offset_ms": round((span.start_ns - start) / 1e6, 3),
            "duration_ms": round(span.duration_ms, 3),
            "events": [{"name": e.name, "offset_ms": round((e.time_ns - start) / 1e6, 3),
                        "attributes": {k: str(v) for k, v in e.attributes.items()}}
                       for e in span.events],
            "attributes": {k: str(v) for k, v in sorted(span.attributes.items())},
        })
    return {"id": item.trace_id, "duration_ms": round(item.duration_ms, 3),
            "start": start / 1e9, "services": item.services, "spans": rows,
            "missing_parent": len(item.roots) > 1}


__all__ = ["SpanTail", "TraceNotFound", "TraceWatch", "summary", "waterfall"]
