"""A bound on the whole answer of one HTTP attempt, not on each socket read.

A socket's read timeout bounds every `recv` separately: a body dripping one byte every 0.2 s
never trips a 0.5 s read timeout and may take minutes. Each attempt therefore gets a `Watch`
whose expiry is the earlier of "read timeout after sending" and the call's deadline; one
watchdog thread per process shuts the attempt's socket down when its watch expires, which ends
the blocked read at once. The transport (`services.common.transport`) arms an attempt's watch
when it sends the request, saying whether it went out on a reused connection (where a reset
usually means the server closed it while idle).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Protocol

TICK_SECONDS = 0.02  # how late a watch may fire


class Connected(Protocol):
    """What a watch shuts down: anything holding the attempt's socket (None once closed)."""

    sock: socket.socket | None


class Watch:
    """One attempt's time limit, armed on the connection it is sent on."""

    __slots__ = ("read", "deadline", "natural_limit", "expires_at", "reused", "fired", "cut_by_caller",
                 "_connection", "_done", "_lock")

    def __init__(self, read: float, deadline: float, natural_limit: float) -> None:
        # deadline: when the call must end (the caller's deadline included);
        # natural_limit: when it would end by its own budget alone (without the caller's).
        self.read, self.deadline, self.natural_limit = read, deadline, natural_limit
        self.expires_at = deadline
        self.reused = self.fired = self.cut_by_caller = False
        self._connection: Connected | None = None
        self._done = False
        self._lock = threading.Lock()

    def arm(self, connection: Connected, reused: bool) -> None:
        """Start the clock: the request is being sent on `connection`."""
        with self._lock:
            self._connection = connection
        self.begin(reused)
        WATCHDOG.schedule(self)

    def begin(self, reused: bool) -> float:
        """Start the clock without the watchdog thread, for a transport that bounds the answer
        itself (an event loop's timer); the monotonic time the answer must be whole by."""
        own = min(time.monotonic() + self.read, self.natural_limit)
        with self._lock:
            self.reused = reused
            self.expires_at = min(own, self.deadline)
            self.cut_by_caller = self.deadline < own
            return self.expires_at

    def expire(self) -> bool:
        """Time is up, seen by the transport itself: mark the watch fired (unless the attempt
        finished first); whether it was."""
        with self._lock:
            if not self._done:
                self.fired = True
            return self.fired

    def fire(self) -> None:
        """Time is up: shut the socket down so the blocked read returns."""
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = self._connection.sock if self._connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
                sock.shutdown(socket.SHUT_RDWR)

    def disarm(self) -> bool:
        """The attempt is over; whether the watch fired first."""
        with self._lock:
            self._done = True
            self._connection = None
            return self.fired


class Watchdog:
    """One thread firing watches when they expire (a heap; finished watches are skipped)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # gunicorn forks workers after import

    def _reset(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def schedule(self, watch: Watch) -> None:
        """Fire `watch` at its expiry unless it is disarmed before."""
        with self._wakeup:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="breakwater-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (watch.expires_at, next(self._order), watch))
            if self._heap[0][2] is watch:
                self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wakeup.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                now = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
            for watch in due:
                watch.fire()  # a finished watch does nothing
            # Most watches finish long before they expire: waking for each would cost more
            # than the precision is worth, so expiries are handled a tick at a time.
            time.sleep(TICK_SECONDS)


WATCHDOG = Watchdog()
