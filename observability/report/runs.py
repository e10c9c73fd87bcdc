"""Report folders: `reports/<time>-<name>/`, listed newest first."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

REPORTS_ENV = "BREAKWATER_REPORTS_DIR"


def reports_root(root: str | Path | None = None) -> Path:
    """Where reports go: `root`, else BREAKWATER_REPORTS_DIR, else ./reports."""
    return Path(root or os.environ.get(REPORTS_ENV) or "reports")


def new_run_dir(name: str, root: str | Path | None = None, now: float | None = None) -> Path:
    """A fresh folder `reports/<YYYYmmdd-HHMMSS>-<name>/` (suffixed when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    base = reports_root(root) / f"{stamp}-{safe}"
    path, index = base, 1
    while path.exists():
        index += 1
        path = base.with_name(f"{base.name}-{index}")
    path.mkdir(parents=True)
    return path


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
