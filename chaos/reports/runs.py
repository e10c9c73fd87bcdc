"""Report folders (`reports/<time>-<name>/`, made by the runs themselves), listed newest first,
and `reports/index.html`, the page that links every run.

A folder is a run when a run finished writing into it: an experiment's `summary.json` or a
load run's `load.json`. An empty folder (a run refused or interrupted before it measured
anything) or one that something else put there is not listed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chaos.experiments.runs import reports_root

INDEX = "index.html"
RUN_FILES = ("summary.json", "load.json")


class RunNotFound(LookupError):
    """No run folder matches; the message says where it looked."""


def _read(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _stack_text(summary: dict[str, Any]) -> str:
    stack = summary.get("stack") if isinstance(summary.get("stack"), dict) else {}
    parts = []
    resilience = summary.get("resilience", stack.get("resilience"))
    if resilience is not None:
        parts.append(f"resilience {'on' if resilience else 'off'}")
    replicas = summary.get("product_replicas", stack.get("product_replicas"))
    if replicas is not None:
        parts.append(f"product ×{replicas}")
    bounded = summary.get("capacity_bounded", stack.get("capacity_bounded"))
    if bounded is not None:
        parts.append("CPU quotas" if bounded else "no CPU quotas")
    if summary.get("host") and not parts:
        parts.append(str(summary["host"]))
    return ", ".join(parts)


def describe_run(path: Path) -> dict[str, Any] | None:
    """One run folder as a row (run, name, kind, verdict, date, stack, link), or None when the
    folder holds no finished run."""
    summary = _read(path / "summary.json")
    kind = "experiment"
    if summary is None:
        summary = _read(path / "load.json")
        kind = "load"
    if summary is None:
        return None
    holds = summary.get("hypothesis_holds")
    verdict = "n/a" if holds is None else ("PASS" if holds else "FAIL")
    started = summary.get("started")
    date = summary.get("started_at") or (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started)))
        if isinstance(started, int | float) else "")
    link = next((name for name in ("report.html", "locust.html") if (path / name).exists()), "")
    if kind == "load":  # no hypothesis: say whether requests failed
        failures = summary.get("failures")
        verdict = "n/a" if failures is None else ("ok" if failures == 0 else
                                                  f"{failures} failed")
    return {"run": path.name, "path": str(path), "kind": kind, "verdict": verdict,
            "name": summary.get("experiment") or summary.get("scenario") or path.name,
            "resilience": summary.get("resilience"), "date": date,
            "stack": _stack_text(summary), "link": f"{path.name}/{link}" if link else "",
            "has_html": (path / "report.html").exists()}


def list_runs(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every finished run in the reports folder, newest first."""
    folder = reports_root(root)
    if not folder.is_dir():
        return []
    rows = (describe_run(path) for path in sorted(folder.iterdir(), reverse=True)
            if path.is_dir())
    return [row for row in rows if row is not None]


def write_index(root: str | Path | None = None) -> Path:
    """(Re)write `reports/index.html` listing every run; its path."""
    from chaos.reports.html import render_index

    folder = reports_root(root)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / INDEX
    page.write_text(render_index(list_runs(folder), str(folder.absolute())))
    return page


def find_run(run: str | None = None, root: str | Path | None = None) -> Path:
    """The run folder named (or whose name contains) `run`; the newest when None."""
    runs = list_runs(root)
    if not runs:
        raise RunNotFound(f"no reports in {reports_root(root).absolute()}")
    if not run:
        return Path(runs[0]["path"])
    if Path(run).is_dir() and describe_run(Path(run)) is not None:
        return Path(run)
    matches = [r for r in runs if r["run"] == run] or [r for r in runs if run in r["run"]]
    if not matches:
        raise RunNotFound(f"no report matches {run!r} in {reports_root(root).absolute()}")
    return Path(matches[0]["path"])
