"""pybreaker's circuit breaker, made safe for concurrent calls.

`pybreaker.CircuitBreaker.call` holds the breaker's lock for the whole guarded call, so every
call through one breaker runs one at a time (pybreaker issues #3 and #55): in a gateway, one
slow request would queue all the others behind it. `ConcurrentBreaker` keeps pybreaker's state
machine, storage and listeners, but takes the lock only to admit a call and to record its
outcome. In half-open it lets exactly one trial call through at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker

T = TypeVar("T")


class ConcurrentBreaker(pybreaker.CircuitBreaker):
    """A pybreaker circuit breaker whose guarded calls run concurrently."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trial_in_flight = False

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `func` if the breaker admits it, and record its outcome."""
        trial = self._admit()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            with self._lock:
                self._trial_in_flight = self._trial_in_flight and not trial
                # pybreaker re-raises when this failure trips the breaker; the original is raised below.
                with contextlib.suppress(BaseException):
                    self.state._handle_error(exc, reraise=False)
            raise
        with self._lock:
            self._trial_in_flight = self._trial_in_flight and not trial
            self.state._handle_success()
        return result

    def _open_window_elapsed(self) -> bool:
        opened_at = self._state_storage.opened_at
        return opened_at is None or datetime.now(UTC) >= opened_at + timedelta(seconds=self.reset_timeout)

    def admits(self) -> bool:
        """Whether a call made now would be let through (without making it)."""
        with self._lock:
            state = self.current_state
            if state == pybreaker.STATE_OPEN:
                return self._open_window_elapsed()
            return not (state == pybreaker.STATE_HALF_OPEN and self._trial_in_flight)

    def _admit(self) -> bool:
        with self._lock:
            state = self.current_state
            if state == pybreaker.STATE_OPEN:
                if not self._open_window_elapsed():
                    raise pybreaker.CircuitBreakerError("circuit breaker is open")
                self.half_open()
                state = pybreaker.STATE_HALF_OPEN
            if state == pybreaker.STATE_HALF_OPEN:
                if self._trial_in_flight:
                    raise pybreaker.CircuitBreakerError("circuit breaker is half-open; a trial call is in flight")
                self._trial_in_flight = True
                return True
            return False
