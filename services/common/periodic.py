"""A background task run on an interval inside a service process, with backoff on errors.

Each process (each gunicorn worker) runs its own: the tasks are written so that any number of
them may run at once (every step idempotent and guarded), so no leader is needed. A process
forked after the task started gets its own thread on its first request (`ensure_running`).
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Calls `run_once` every `interval` seconds (with jitter) on a daemon thread; after a
    failure waits twice as long each time, up to `max_backoff`, then back to the interval."""

    def __init__(self, name: str, run_once: Callable[[], object], *, interval: float,
                 max_backoff: float = 60.0, jitter: float = 0.2,
                 rand: Callable[[], float] = random.random) -> None:
        self.name, self.run_once, self.interval = name, run_once, interval
        self.max_backoff, self.jitter, self._rand = max(max_backoff, interval), jitter, rand
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def next_delay(self) -> float:
        """Seconds until the next run: the interval, doubled per consecutive failure, jittered."""
        base = min(self.interval * (2 ** self.failures), self.max_backoff)
        return base * (1 + self.jitter * (2 * self._rand() - 1))

    def tick(self) -> bool:
        """Run once now; whether it worked (a failure is logged and backs the next run off)."""
        try:
            self.run_once()
        except Exception:
            self.failures += 1
            log.exception("%s failed (%d in a row); next try in %.1fs", self.name, self.failures,
                          self.next_delay())
            return False
        self.failures = 0
        return True

    def ensure_running(self) -> None:
        """Start the thread unless it runs in this process already."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (tests; a process that exits needs nothing: it is a daemon)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.next_delay()):
            self.tick()
