"""A circuit breaker that judges a replica by its failure rate and slow-call rate.

pybreaker keeps the state machine (closed, open, half-open), its listeners and its storage;
this module decides *when* to move between states, through pybreaker's public `open()`,
`half_open()` and `close()`, with resilience4j's semantics:

- closed: the outcome of every call lands in a sliding window (the last N calls, or the last N
  seconds); once it holds `minimum_calls`, a failure rate or slow-call rate at or above its
  threshold opens the breaker. A run of `consecutive_failures` failures opens it at once (a
  replica that stopped answering should not need ten calls to be noticed).
- open: no call goes through until `reset_timeout` has passed; then the breaker is half-open.
  That is decided by time alone, whenever anybody looks (a call, the balancer, the status
  view), not when a call happens to land on this replica (pybreaker issue #15).
- half-open: exactly one trial call goes through; only its outcome decides (success: closed,
  failure or slow: open again). Outcomes of calls admitted in an earlier state are ignored —
  a slow success that started before the breaker opened says nothing about the replica now.

Calls run concurrently: the lock is held only to admit a call and to record its outcome
(pybreaker's own `call` holds it for the whole call, issues #3 and #55).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from services.common.circuit_library import pybreaker

CLOSED, OPEN, HALF_OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN
WINDOW_KINDS = ("count", "time")


class BreakerOpen(pybreaker.CircuitBreakerError):
    """The breaker refused a call (open, or half-open with its trial in flight)."""


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and when it tries again."""

    failure_rate_threshold: float = 0.5  # open at this share of failed calls in the window
    slow_call_rate_threshold: float = 1.0  # ... or at this share of slow calls
    slow_call_seconds: float = 1.0  # a call slower than this is slow (successful or not)
    window: str = "count"  # "count": the last `window_size` calls; "time": the last `window_size` s
    window_size: int = 20
    minimum_calls: int = 10  # no rate is judged on fewer calls than this
    consecutive_failures: int = 5  # this many failures in a row open at once (0: never)
    reset_timeout: float = 5.0  # seconds open before the trial

    def __post_init__(self) -> None:
        if self.window not in WINDOW_KINDS:
            raise ValueError(f"breaker window {self.window!r}: use one of {', '.join(WINDOW_KINDS)}")
        if self.window_size < 1 or self.minimum_calls < 1:
            raise ValueError("breaker window_size and minimum_calls must be at least 1")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"breaker {name} must be in (0, 1]")


class OutcomeWindow:
    """Calls, failures and slow calls over the last N calls or the last N seconds."""

    def __init__(self, kind: str, size: int, clock: Callable[[], float]) -> None:
        self.kind, self.size, self.clock = kind, size, clock
        # count: one (failed, slow) per call; time: one [second, calls, failed, slow] per second.
        self._entries: deque[Any] = deque(maxlen=size if kind == "count" else None)
        self.calls = self.failures = self.slow = 0

    def add(self, failed: bool, slow: bool) -> None:
        """Record one call's outcome."""
        if self.kind == "count":
            if len(self._entries) == self.size:
                old_failed, old_slow = self._entries[0]
                self.calls, self.failures, self.slow = (self.calls - 1, self.failures - old_failed,
                                                        self.slow - old_slow)
            self._entries.append((failed, slow))
        else:
            second = int(self.clock())
            self._expire(second)
            if not self._entries or self._entries[-1][0] != second:
                self._entries.append([second, 0, 0, 0])
            bucket = self._entries[-1]
            bucket[1] += 1
            bucket[2] += failed
            bucket[3] += slow
        self.calls, self.failures, self.slow = self.calls + 1, self.failures + failed, self.slow + slow

    def _expire(self, now_second: int) -> None:
        while self._entries and self._entries[0][0] <= now_second - self.size:
            _, calls, failed, slow = self._entries.popleft()
            self.calls, self.failures, self.slow = self.calls - calls, self.failures - failed, self.slow - slow

    def rates(self) -> tuple[int, float, float]:
        """(calls, failure rate, slow-call rate) in the window now."""
        if self.kind == "time":
            self._expire(int(self.clock()))
        if not self.calls:
            return 0, 0.0, 0.0
        return self.calls, self.failures / self.calls, self.slow / self.calls

    def clear(self) -> None:
        """Forget every outcome (the breaker changed state)."""
        self._entries.clear()
        self.calls = self.failures = self.slow = 0


@dataclass(frozen=True)
class Permit:
    """A call the breaker let through; hand it back with `record` or `release`."""

    generation: int
    trial: bool
    started: float


class Breaker:
    """A replica's breaker: admit calls, record their outcomes, report rates and timing."""

    def __init__(self, name: str, policy: BreakerPolicy,
                 listeners: Iterable[pybreaker.CircuitBreakerListener] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.policy, self.clock = name, policy, clock
        # pybreaker's own counters and timers are unused: decisions are made here.
        self.machine = pybreaker.CircuitBreaker(
            fail_max=2**31, reset_timeout=policy.reset_timeout, listeners=list(listeners), name=name,
            throw_new_error_on_trip=False,
        )
        self.window = OutcomeWindow(policy.window, policy.window_size, clock)
        # Reentrant: pybreaker calls the listeners during a transition, and one may look back.
        self._lock = threading.RLock()
        self._generation = 0  # bumped on every transition: permits of older states are ignored
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.failures_in_a_row = 0
        self.last_trip: dict[str, Any] | None = None  # why it last opened, for the status view

    @property
    def state(self) -> str:
        """closed, open or half-open (half-open as soon as the reset timeout has passed)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> str:
        state = self.machine.current_state
        if state == OPEN and self.clock() >= self._opened_at + self.policy.reset_timeout:
            self._move(HALF_OPEN)
            return HALF_OPEN
        return state

    def _move(self, state: str) -> None:
        """Transition through pybreaker (which tells the listeners) and start a new generation."""
        self._generation += 1
        self._trial_in_flight = False
        self.failures_in_a_row = 0
        self.window.clear()
        if state == OPEN:
            self._opened_at = self.clock()
            self.machine.open()
        elif state == HALF_OPEN:
            self.machine.half_open()
        else:
            self.machine.close()

    def admits(self) -> bool:
        """Whether a call made now would be let through (without taking a permit)."""
        with self._lock:
            state = self._refresh()
            return state == CLOSED or (state == HALF_OPEN and not self._trial_in_flight)

    def trial_due(self) -> bool:
        """Half-open with no trial in flight: the next call here is the trial."""
        with self._lock:
            return self._refresh() == HALF_OPEN and not self._trial_in_flight

    def acquire(self) -> Permit:
        """A permit for one call, or `BreakerOpen`."""
        with self._lock:
            state = self._refresh()
            if state == OPEN:
                raise BreakerOpen(f"circuit breaker {self.name} is open")
            trial = state == HALF_OPEN
            if trial:
                if self._trial_in_flight:
                    raise BreakerOpen(f"circuit breaker {self.name} is half-open; its trial is in flight")
                self._trial_in_flight = True
            return Permit(self._generation, trial, self.clock())

    def record(self, permit: Permit, *, failed: bool) -> None:
        """The outcome of a permitted call: it failed, or it answered (slow or not)."""
        slow = self.clock() - permit.started >= self.policy.slow_call_seconds
        with self._lock:
            if permit.generation != self._generation:
                return  # admitted before the last transition: it does not describe the replica now
            if permit.trial:
                if failed or slow:
                    self.last_trip = {"reason": "failed_trial" if failed else "slow_trial"}
                self._move(OPEN if failed or slow else CLOSED)
                return
            self.window.add(failed, slow)
            self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
            reason = self._trip_reason()
            if reason:
                calls, failure_rate, slow_rate = self.window.rates()
                self.last_trip = {"reason": reason, "failure_rate": round(failure_rate, 3),
                                  "slow_call_rate": round(slow_rate, 3), "calls": calls,
                                  "failures_in_a_row": self.failures_in_a_row}
                self._move(OPEN)

    def release(self, permit: Permit) -> None:
        """Hand a permit back without an outcome (the call said nothing about the replica)."""
        with self._lock:
            if permit.trial and permit.generation == self._generation:
                self._trial_in_flight = False  # still half-open: the next call is the trial

    def _trip_reason(self) -> str:
        """Why the breaker must open now ("" when it must not)."""
        policy = self.policy
        if policy.consecutive_failures and self.failures_in_a_row >= policy.consecutive_failures:
            return "consecutive_failures"
        calls, failure_rate, slow_rate = self.window.rates()
        # As resilience4j: a count window smaller than the minimum is judged when it is full.
        minimum = min(policy.minimum_calls, policy.window_size) if policy.window == "count" else policy.minimum_calls
        if calls < minimum:
            return ""
        if failure_rate >= policy.failure_rate_threshold:
            return "failure_rate"
        return "slow_call_rate" if slow_rate >= policy.slow_call_rate_threshold else ""

    def next_trial_in(self) -> float | None:
        """Seconds until the trial is due (0 when it is due now; None when closed)."""
        with self._lock:
            return self._wait(self._refresh())

    def _wait(self, state: str) -> float | None:
        if state == CLOSED:
            return None
        if state == HALF_OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.policy.reset_timeout - self.clock())

    def view(self) -> dict[str, Any]:
        """State, rates over the window and time to the next trial, for status pages."""
        with self._lock:
            state = self._refresh()
            calls, failure_rate, slow_rate = self.window.rates()
            wait = self._wait(state)
            return {
                "state": state,
                "failure_rate": round(failure_rate, 3),
                "slow_call_rate": round(slow_rate, 3),
                "calls_in_window": calls,
                "failures_in_a_row": self.failures_in_a_row,
                "next_trial_in": None if wait is None else round(wait, 3),
                "trial_in_flight": self._trial_in_flight,
                "last_trip": self.last_trip,
            }
