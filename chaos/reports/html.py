"""report.html: verdicts, numbers, plots and trace links of one run on one page."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} .meta{color:#666} table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3} .PASS{color:#fff;background:#2ca02c} .FAIL{color:#fff;background:#d62728}
.INCONCLUSIVE{background:#ffbb78} .big{font-size:1.4em;padding:.3em .8em;display:inline-block}
img{max-width:100%;border:1px solid #eee;margin:.3em 0} code{background:#f6f6f6}
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], raw: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if i in raw else _cell(cell)}</td>"
                         for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(summary: dict[str, Any], plots: Sequence[str], locust_files: Sequence[str]) -> str:
    """The whole page."""
    holds = summary.get("hypothesis_holds")
    verdict = "n/a" if holds is None else ("PASS" if holds else "FAIL")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>"
             f"{escape(str(summary.get('experiment', 'run')))}</title><style>{STYLE}</style>"
             "</head><body>",
             f"<h1>{escape(str(summary.get('experiment', 'run')))}</h1>",
             f"<p class='meta'>{escape(str(summary.get('description', '')))}</p>",
             f"<p><span class='big {verdict}'>hypothesis: {verdict}</span></p>"]
    facts = [("started", summary.get("started_at")), ("resilience", summary.get("resilience")),
             ("load mode", summary.get("mode")), ("scenario", summary.get("scenario")),
             ("product replicas", summary.get("product_replicas")),
             ("capacity", summary.get("capacity")),
             ("offered rate (req/s)", summary.get("offered_rate")),
             ("achieved rate (req/s)", summary.get("achieved_rate")),
             ("requests", summary.get("requests")), ("rollback", summary.get("rollback"))]
    parts.append(_table(["", ""], [(k, v) for k, v in facts if v is not None]))
    verdicts = summary.get("verdicts") or []
    if verdicts:
        parts.append("<h2>Verdicts</h2>")
        parts.append(_table(
            ["clause", "result", "measured", "threshold", "detail"],
            [(v["name"], f"<span class='{v['status']}'>{v['status']}</span>", v["measured"],
              v["threshold"], v["detail"]) for v in verdicts], raw=(1,)))
    for title, key in (("Scaling", "scaling_table"), ("Audit", "audit_table")):
        table = summary.get(key)
        if table:
            parts.append(f"<h2>{title}</h2>")
            parts.append(_table(table["headers"], table["rows"]))
    if summary.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(
            f"<li>{escape(str(n))}</li>" for n in summary["notes"]) + "</ul>")
    faults = summary.get("faults") or []
    if faults:
        parts.append("<h2>Faults</h2>")
        parts.append(_table(["fault", "start s", "end s"],
                            [(f.get("label") or f"{f['target']} {f['kind']}", f.get("start"),
                              f.get("end")) for f in faults]))
    windows = summary.get("groups") or {}
    if windows:
        parts.append("<h2>Route groups per window</h2>")
        rows = []
        for window, groups in windows.items():
            for group, stats in groups.items():
                rows.append((window, group, stats["requests"], stats["failures"],
                             stats["expected"], stats["error_rate"], stats["rps"],
                             stats["p50_ms"], stats["p95_ms"], stats["p99_ms"]))
        parts.append(_table(["window", "group", "requests", "failures", "expected (409/429)",
                             "error rate", "req/s", "p50 ms", "p95 ms", "p99 ms"], rows))
    if plots:
        parts.append("<h2>Plots</h2>")
        parts.extend(f"<img src='{escape(p)}' alt='{escape(p)}'>" for p in plots)
    traces = summary.get("traces") or {}
    for kind in ("slowest", "failed"):
        rows = traces.get(kind) or []
        if rows:
            parts.append(f"<h2>{kind.capitalize()} requests and their traces</h2>")
            parts.append(_table(
                ["t s", "request", "status", "ms", "code", "trace"],
                [(r["t"], f"{r['method']} {r['name']}", r["status"], r["ms"], r["code"],
                  f"<a href='{escape(r['link'])}'>{escape(r['trace_id'][:16])}</a>"
                  if r.get("link") else escape(r["trace_id"][:16]))
                 for r in rows], raw=(5,)))
    if locust_files:
        parts.append("<h2>Files</h2><ul>" + "".join(
            f"<li><a href='{escape(f)}'>{escape(f)}</a></li>" for f in locust_files) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
