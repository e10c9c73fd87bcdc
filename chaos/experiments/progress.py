"""The running experiment's progress file, `var/experiment-progress.json`, for watchers.

The runner says what it is doing (its phase), when the load started, which faults it planned
and applied, and each verdict as it is decided; the console reads the file to show all of it
live. The file is replaced atomically, so a reader never sees half of it. It is only a view:
a run never fails because its progress could not be written.

    {"experiment": "cart-outage", "status": "running", "phase": "load",
     "load": {"started": 1767…, "duration": 40}, "windows": {"fault": [14, 28], …},
     "faults": [{"label": "cart down", "planned_start": 14, "planned_end": 28, "start": 14.0,
                 "end": null, …}], "verdicts": [{"name", "status", "detail"}, …], "holds": null}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chaos.experiments.model import Experiment
from chaos.experiments.verdicts import Verdict
from services.common.settings import var_dir

PROGRESS_FILE = "experiment-progress.json"
FORMAT_VERSION = 1

log = logging.getLogger(__name__)


def default_progress_path() -> Path:
    """`<var>/experiment-progress.json` (BREAKWATER_VAR_DIR, else ./var)."""
    return var_dir() / PROGRESS_FILE


class ExperimentRunning(RuntimeError):
    """Another experiment runs on the stack of this var folder right now."""


def check_no_other_run(path: Path | None) -> None:
    """Raise `ExperimentRunning` when the progress file at `path` belongs to a run that is
    still going: another live process on this host. Two runs sharing a var folder share its
    stack, and the second would stop or reshape the first's."""
    if path is None:
        return
    try:
        other = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return
    if not isinstance(other, dict) or other.get("status") != "running":
        return
    pid = other.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or other.get("host") != socket.gethostname():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # it ended without finishing its file: stale
    except PermissionError:
        pass  # alive, another user's
    raise ExperimentRunning(
        f"experiment {other.get('experiment', '?')} is running on this stack (pid {pid}, "
        f"{Path(path).parent}); wait for it to end, or run this one in another folder "
        "(BREAKWATER_VAR_DIR=other-var)")


class ProgressFile:
    """Writes one run's progress; `ProgressFile(None)` writes nothing."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self.document: dict[str, Any] = {}

    def begin(self, experiment: Experiment, resilience: bool, run_dir: Path) -> None:
        """A run starts: its plan (windows and faults) and where its report goes."""
        self.document = {
            "version": FORMAT_VERSION, "experiment": experiment.name,
            "description": experiment.description, "kind": experiment.kind,
            "resilience": resilience, "run_dir": str(run_dir), "pid": os.getpid(),
            "host": socket.gethostname(), "status": "running", "phase": "starting",
            "phase_since": self.clock(), "started": self.clock(),
            "load": {"started": None, "duration": experiment.duration},
            "windows": {k: list(v) for k, v in experiment.windows.items()},
            "faults": [{"target": f.target, "kind": f.kind, "label": f.label(),
                        "planned_start": f.at, "planned_end": f.until, "start": None,
                        "end": None, "error": None} for f in experiment.faults],
            "verdicts": [], "holds": None,
        }
        self._write()

    def phase(self, name: str) -> None:
        """What the run does now (`starting the stack`, `load`, `judging`, …)."""
        self.document.update(phase=name, phase_since=self.clock())
        self._write()

    def load_started(self, started: float) -> None:
        """The load began at the unix time `started`: fault times count from here."""
        self.document.setdefault("load", {})["started"] = started
        self.document.update(phase="load", phase_since=self.clock())
        self._write()

    def faults(self, records: Sequence[dict[str, Any]]) -> None:
        """The fault schedule's records: planned and actual start and end of each fault."""
        keys = ("target", "kind", "label", "planned_start", "planned_end", "start", "end",
                "error")
        self.document["faults"] = [{k: r.get(k) for k in keys} for r in records]
        self._write()

    def verdict(self, verdict: Verdict) -> None:
        """One clause of the hypothesis has been judged."""
        self.document.setdefault("verdicts", []).append(
            {"name": verdict.name, "check": verdict.check, "status": verdict.status,
             "detail": verdict.detail})
        self._write()

    def finish(self, holds: bool | None, error: str | None = None) -> None:
        """The run is over: its outcome, or the error that ended it."""
        self.document.update(status="failed" if error else "done", phase="done",
                             phase_since=self.clock(), holds=holds, error=error)
        self._write()

    def _write(self) -> None:
        if self.path is None or not self.document:
            return
        self.document["updated"] = self.clock()
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False,
                                             prefix=f".{self.path.name}.", suffix=".tmp") as out:
                temporary = out.name
                json.dump(self.document, out, default=str)
            os.replace(temporary, self.path)
        except OSError as exc:  # only a view: the run goes on
            log.warning("cannot write the experiment progress to %s: %s", self.path, exc)
            if temporary:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
