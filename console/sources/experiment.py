"""The running experiment, from the progress file its runner keeps
(`var/experiment-progress.json`, written by `chaos.experiments.progress`).

The file is re-read only when it changed. A run whose file says "running" but whose process is
gone (same host) is shown as interrupted.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExperimentWatch:
    """The progress file as the page shows it."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time,
                 alive: Callable[[int], bool] = process_alive) -> None:
        self.path = Path(path)
        self.clock = clock
        self.alive = alive
        self._stamp: tuple[int, int] | None = None
        self._document: dict[str, Any] | None = None

    def poll(self) -> dict[str, Any] | None:
        """The experiment's progress with `elapsed` and `interrupted` worked out; None when no
        experiment ran here."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._document = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                document = json.loads(self.path.read_text())
            except (OSError, ValueError):
                return self._with_clock(self._document)  # caught mid-write: keep the last
            self._stamp = stamp
            self._document = document if isinstance(document, dict) else None
        return self._with_clock(self._document)

    def _with_clock(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        shown = dict(document)
        started = (shown.get("load") or {}).get("started")
        if shown.get("status") == "running" and isinstance(started, int | float):
            shown["elapsed"] = round(self.clock() - started, 1)
        pid = shown.get("pid")
        shown["interrupted"] = bool(
            shown.get("status") == "running" and isinstance(pid, int)
            and shown.get("host") == socket.gethostname() and not self.alive(pid))
        return shown
