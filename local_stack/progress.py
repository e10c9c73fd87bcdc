"""Progress of long operations: one line per step, ticking on a terminal, plain otherwise.

The library reports through a `Progress`; the default one is silent, the CLI passes a
`ConsoleProgress`. A step is a context manager: `with progress.step("fault proxy") as step:
step.update("3/7 ready")`; it ends as done, or failed when an exception leaves it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Step:
    """One running step; `update` changes the detail shown after its label."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.detail = ""
        self.started = time.monotonic()

    def update(self, detail: str) -> None:
        """Show `detail` next to the label (e.g. "3/7 ready")."""
        self.detail = detail

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Progress:
    """Silent progress: steps run, nothing is shown."""

    @contextmanager
    def step(self, label: str) -> Iterator[Step]:
        """Run one step."""
        yield Step(label)

    def note(self, message: str) -> None:
        """A line of information between steps (a warning, say)."""


class ConsoleProgress(Progress):
    """Steps on a stream: a ticking spinner line on a TTY, `... label` / `ok label` otherwise."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @contextmanager
    def step(self, label: str) -> Iterator[Step]:
        step = Step(label)
        stop = threading.Event()
        ticker = None
        if self.tty:
            ticker = threading.Thread(target=self._tick, args=(step, stop), daemon=True)
            ticker.start()
        else:
            self._write(f"... {label}\n")
        try:
            yield step
        except BaseException:
            self._finish(step, stop, ticker, "FAIL")
            raise
        self._finish(step, stop, ticker, " ok ")

    def note(self, message: str) -> None:
        self._write(f"{message}\n")

    def _tick(self, step: Step, stop: threading.Event) -> None:
        frame = 0
        while not stop.wait(self.interval):
            self._line(f" {SPINNER[frame % len(SPINNER)]}  {self._text(step)}")
            frame += 1

    def _finish(self, step: Step, stop: threading.Event, ticker: threading.Thread | None,
                mark: str) -> None:
        stop.set()
        if ticker is not None:
            ticker.join()
            self._line(f"[{mark}] {self._text(step)}\n")
        else:
            self._write(f"[{mark}] {self._text(step)}\n")

    @staticmethod
    def _text(step: Step) -> str:
        detail = f" — {step.detail}" if step.detail else ""
        return f"{step.label}{detail} ({step.elapsed:.1f}s)"

    def _line(self, text: str) -> None:
        self._write(f"\r\x1b[2K{text}")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
