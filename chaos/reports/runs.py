"""Report folders (`reports/<time>-<name>/`, made by the runs themselves), listed newest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.experiments.runs import reports_root


def list_runs(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every run folder with its name, verdict and path, newest first."""
    runs = []
    folder = reports_root(root)
    if not folder.is_dir():
        return []
    for path in sorted(folder.iterdir(), reverse=True):
        summary_path = path / "summary.json"
        if not path.is_dir():
            continue
        entry: dict[str, Any] = {"run": path.name, "path": str(path), "name": path.name,
                                 "verdict": "?", "has_html": (path / "report.html").exists()}
        try:
            summary = json.loads(summary_path.read_text())
            entry["name"] = summary.get("experiment") or summary.get("scenario") or path.name
            holds = summary.get("hypothesis_holds")
            entry["verdict"] = "n/a" if holds is None else ("PASS" if holds else "FAIL")
            entry["resilience"] = summary.get("resilience")
        except (OSError, ValueError):
            pass
        runs.append(entry)
    return runs


def find_run(run: str | None = None, root: str | Path | None = None) -> Path:
    """The run folder named (or whose name contains) `run`; the newest when None."""
    runs = list_runs(root)
    if not runs:
        raise FileNotFoundError(f"no reports in {reports_root(root)}")
    if not run:
        return Path(runs[0]["path"])
    if Path(run).is_dir():
        return Path(run)
    matches = [r for r in runs if r["run"] == run] or [r for r in runs if run in r["run"]]
    if not matches:
        raise FileNotFoundError(f"no report matches {run!r} in {reports_root(root)}")
    return Path(matches[0]["path"])
