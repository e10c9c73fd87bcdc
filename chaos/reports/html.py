"""HTML pages from Jinja2 templates (`chaos/reports/templates/`, autoescaped): report.html,
the verdicts, numbers, plots and trace links of one run; index.html, every run."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, Undefined


def cell(value: Any) -> str:
    """A table cell: floats to 3 decimals below 10, to 1 above; None as empty."""
    if isinstance(value, Undefined) or value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


@cache
def environment() -> Environment:
    """The templates, HTML-escaped everywhere: every value of a summary is data, not markup."""
    env = Environment(loader=PackageLoader("chaos.reports", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["cell"] = cell
    return env


def render(summary: dict[str, Any], plots: Sequence[str], locust_files: Sequence[str]) -> str:
    """report.html of one run."""
    holds = summary.get("hypothesis_holds")
    facts = [("started", summary.get("started_at")), ("resilience", summary.get("resilience")),
             ("load mode", summary.get("mode")), ("scenario", summary.get("scenario")),
             ("product replicas", summary.get("product_replicas")),
             ("capacity", summary.get("capacity")),
             ("offered rate (req/s)", summary.get("offered_rate")),
             ("achieved rate (req/s)", summary.get("achieved_rate")),
             ("requests", summary.get("requests")), ("rollback", summary.get("rollback"))]
    window_rows = [
        (window, group, stats["requests"], stats["failures"], stats["expected"],
         stats["error_rate"], stats["rps"], stats["p50_ms"], stats["p95_ms"], stats["p99_ms"])
        for window, groups in (summary.get("groups") or {}).items()
        for group, stats in groups.items()]
    fault_rows = [(f.get("label") or f"{f['target']} {f['kind']}", f.get("start"), f.get("end"))
                  for f in summary.get("faults") or []]
    return environment().get_template("report.html").render(
        summary=summary, verdict="n/a" if holds is None else ("PASS" if holds else "FAIL"),
        facts=[(k, v) for k, v in facts if v is not None], window_rows=window_rows,
        fault_rows=fault_rows, plots=list(plots), traces=summary.get("traces") or {},
        files=list(locust_files))


def render_index(runs: Sequence[dict[str, Any]], root: str) -> str:
    """index.html: one row a run (name, verdict, date, kind, stack, link)."""
    return environment().get_template("index.html").render(runs=list(runs), root=root)

