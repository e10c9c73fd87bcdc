"""One poller, many pages: the sources are read once per interval and every open page gets
the same update through its own queue (server-sent events).

The poller runs only while at least one page listens, so an unwatched console costs nothing
and a hundred open tabs cost what one does.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

QUEUE_SIZE = 16


class TooManyListeners(RuntimeError):
    """Every stream slot is taken."""


class Listener:
    """One page's stream: updates in order; when it falls behind, the oldest are dropped."""

    def __init__(self) -> None:
        self.updates: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)

    def put(self, update: dict[str, Any]) -> None:
        """Queue an update, dropping the oldest when the page does not keep up."""
        while True:
            try:
                self.updates.put_nowait(update)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.updates.get_nowait()

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next update, or None after `timeout` seconds without one."""
        try:
            return self.updates.get(timeout=timeout)
        except queue.Empty:
            return None


class Hub:
    """Polls `read()` every `interval` seconds while listeners exist and hands each result to
    all of them."""

    def __init__(self, read: Callable[[], dict[str, Any]], interval: float = 1.0,
                 max_listeners: int = 8) -> None:
        self.read = read
        self.interval = interval
        self.max_listeners = max_listeners
        self.polls = 0
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def listening(self) -> int:
        """How many pages listen now."""
        with self._lock:
            return len(self._listeners)

    @property
    def polling(self) -> bool:
        """Whether the poller thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def subscribe(self) -> Listener:
        """A new listener; the poller starts if it was idle."""
        listener = Listener()
        with self._lock:
            if len(self._listeners) >= self.max_listeners:
                raise TooManyListeners(f"{self.max_listeners} pages already listen")
            self._listeners.append(listener)
            if self._thread is None or not self._thread.is_alive():
                self._stopped = False
                self._thread = threading.Thread(target=self._run, name="console-poller",
                                                daemon=True)
                self._thread.start()
            else:
                self._wake.set()  # a new page gets a fresh update at once
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        """Forget a listener; the poller stops after its current round when none is left."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def stop(self) -> None:
        """Stop polling for good (server shutdown)."""
        with self._lock:
            self._stopped = True
            self._listeners.clear()
        self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopped or not self._listeners:
                    self._thread = None
                    return
            update = self.read()
            self.polls += 1
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                listener.put(update)
            self._wake.wait(self.interval)
            self._wake.clear()
