"""Recent traces from span files read a few lines at a time, and the waterfall of one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from console.sources.traces import SpanTail, TraceWatch, waterfall


def span_line(trace: str, span: str, parent: str | None, service: str, name: str,
              start_ms: float, end_ms: float, error: bool = False) -> str:
    """One OTLP/JSON line as the span-file exporter writes it."""
    base = BASE
    body = {"traceId": trace, "spanId": span, "name": name, "kind": 2,
            "startTimeUnixNano": str(base + int(start_ms * 1e6)),
            "endTimeUnixNano": str(base + int(end_ms * 1e6)),
            "status": {"code": 2} if error else {},
            "events": [{"timeUnixNano": str(base + int(start_ms * 1e6) + 1000),
                        "name": "breaker_state_change"}] if error else []}
    if parent:
        body["parentSpanId"] = parent
    document = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [body]}]}]}
    return json.dumps(document) + "\n"


T1, T2 = "a" * 32, "b" * 32
BASE = int(time.time() * 1e9)


def test_only_new_complete_lines_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "gateway-1.jsonl"
    path.write_text(span_line(T1, "1" * 16, None, "gateway", "GET /api/v1/cart", 0, 50))
    tail = SpanTail(tmp_path)
    tail.read()
    assert [t.trace_id for t in tail.traces()] == [T1]
    second = span_line(T1, "2" * 16, "1" * 16, "cart", "GET /api/v1/cart", 5, 45, error=True)
    with open(path, "a") as handle:
        handle.write(second[:40])  # a writer caught mid-line
    tail.read()
    assert len(tail.trace(T1).spans) == 1
    with open(path, "a") as handle:
        handle.write(second[40:])
    tail.read()
    assert len(tail.trace(T1).spans) == 2 and tail.trace(T1).has_error


def test_a_rotated_file_is_followed_by_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "cart-9.jsonl"
    path.write_text(span_line(T1, "1" * 16, None, "cart", "one", 0, 5))
    tail = SpanTail(tmp_path)
    tail.read()
    os.replace(path, tmp_path / "cart-9.1.jsonl")
    path.write_text(span_line(T2, "3" * 16, None, "cart", "two", 0, 7))
    tail.read()
    assert {t.trace_id for t in tail.traces()} == {T1, T2}
    assert len(tail.trace(T1).spans) == 1  # the renamed file was not read twice


def test_old_traces_are_forgotten(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(span_line(T1, "1" * 16, None, "cart", "x", 0, 1))
    later = [time.time() + 3600]
    tail = SpanTail(tmp_path, keep_seconds=60, clock=lambda: later[0])
    tail.read()
    assert tail.traces() == []


def test_slowest_failed_and_the_waterfall(tmp_path: Path) -> None:
    lines = [span_line(T1, "1" * 16, None, "gateway", "GET /api/v1/cart", 0, 80),
             span_line(T1, "2" * 16, "1" * 16, "cart", "GET /api/v1/cart", 10, 70, error=True),
             span_line(T2, "3" * 16, None, "gateway", "GET /api/v1/products", 0, 5)]
    (tmp_path / "x.jsonl").write_text("".join(lines))
    watch = TraceWatch(tmp_path)
    view = watch.poll()
    assert [t["id"] for t in view["slowest"]] == [T1, T2]
    assert [t["id"] for t in view["failed"]] == [T1]
    assert view["slowest"][0]["services"] == ["gateway", "cart"]
    shown = waterfall(watch.trace(T1[:8]))
    assert [(s["depth"], s["service"]) for s in shown["spans"]] == [(0, "gateway"), (1, "cart")]
    assert shown["spans"][1]["offset_ms"] == 10.0 and shown["spans"][1]["status"] == "error"
    assert shown["spans"][1]["events"][0]["name"] == "breaker_state_change"
    assert shown["missing_parent"] is False
