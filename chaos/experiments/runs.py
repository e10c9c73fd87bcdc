"""Run folders: every load run and experiment writes into `reports/<time>-<name>/`.

Creating the folder belongs to the runs themselves; listing and rendering them is the reports
layer's (`chaos.reports`).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

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
