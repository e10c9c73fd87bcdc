"""Traces as text for a terminal: a table of traces and a waterfall of one trace."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from observability.spans import Span, Trace

BAR_WIDTH = 40


def format_duration(ms: float) -> str:
    """`0.42 ms`, `12.3 ms`, `1.25 s`."""
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def format_time(ns: int) -> str:
    """A span start as local time with milliseconds."""
    seconds = ns / 1e9
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}"


def _table(rows: list[list[str]], right: Iterable[int] = ()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    aligned = set(right)
    return ["  ".join(cell.rjust(widths[i]) if i in aligned else cell.ljust(widths[i])
                      for i, cell in enumerate(row)).rstrip() for row in rows]


def trace_table(traces: list[Trace]) -> str:
    """One line a trace: id, root operation, services, span count, duration, status, start."""
    if not traces:
        return "no traces found"
    rows = [["TRACE ID", "ROOT", "SERVICES", "SPANS", "DURATION", "STATUS", "START"]]
    for item in traces:
        root = item.root
        # A root whose own parent has not arrived is not the trace's root: say so.
        shown = f"{root.service}: {root.name}" + ("" if item.complete else " (INCOMPLETE)")
        rows.append([item.trace_id, shown, ",".join(item.services),
                     str(len(item.spans)), format_duration(item.duration_ms), item.status.upper(),
                     format_time(item.start_ns)])
    return "\n".join(_table(rows, right=(3, 4)))


def _bar(span: Span, trace_start: int, trace_ns: int, width: int = BAR_WIDTH) -> str:
    scale = width / trace_ns if trace_ns > 0 else 0.0
    offset = min(width - 1, int((span.start_ns - trace_start) * scale))
    length = max(1, min(width - offset, round(span.duration_ns * scale)))
    return " " * offset + "█" * length + " " * (width - offset - length)


def _fields(attributes: Mapping[str, Any]) -> str:
    return " ".join(f"{key.removeprefix('breakwater.')}={value}" for key, value in attributes.items())


def waterfall(item: Trace, width: int = BAR_WIDTH) -> str:
    """The trace as a tree: operation, service, duration, a bar on the trace's time scale,
    status, and each span's events (breaker changes, retries, fallbacks) underneath."""
    start, total = item.start_ns, item.duration_ns
    header = (f"trace {item.trace_id}  {len(item.spans)} spans  {len(item.services)} services  "
              f"{format_duration(item.duration_ms)}  {item.status.upper()}  "
              f"started {format_time(start)}")
    rows = [["OPERATION", "SERVICE", "DURATION", "|" + "0".ljust(width - len(
        format_duration(item.duration_ms))) + format_duration(item.duration_ms) + "|", "STATUS"]]
    notes: dict[int, list[str]] = {}
    missing = item.missing_parents
    for depth, span in item.walk():
        status = span.status.upper() + (f" {span.status_message}" if span.status_message else "")
        name = span.name + (" (parent not here)" if span.parent_id in missing else "")
        rows.append(["  " * depth + name, span.instance, format_duration(span.duration_ms),
                     "|" + _bar(span, start, total, width) + "|", status if span.is_error else ""])
        lines = []
        for event in sorted(span.events, key=lambda e: e.time_ns):
            at = format_duration((event.time_ns - start) / 1e6)
            lines.append(f"{'  ' * depth}  • +{at} {event.name} {_fields(event.attributes)}".rstrip())
        if lines:
            notes[len(rows) - 1] = lines
    out = [header]
    if missing:
        orphans = [s for s in item.spans if s.parent_id in missing]
        out.append(f"INCOMPLETE: {len(orphans)} span(s) name a parent span that is not here "
                   f"({', '.join(sorted(missing))}): the process that recorded it may not have "
                   "exported it yet (try again in a second), or it is never exported here (a "
                   "caller outside the stack, or lost); the top span below is not the trace's "
                   "root.")
    out.append("")
    for index, line in enumerate(_table(rows, right=(2,))):
        out.append(line)
        out.extend(notes.get(index, []))
    return "\n".join(out)
