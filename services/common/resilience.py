"""The building blocks of a protected call: bulkhead, retry budget, breaker listener, events.

Each is small and thread-safe; `services.common.client` combines them per upstream service and
per instance.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from services.common.circuit_library import pybreaker

log = logging.getLogger("breakwater.resilience")


class ClientListener(Protocol):
    """Receives what the resilient client does: breaker changes, rejections, ejections, retries."""

    def event(self, name: str, **fields: Any) -> None: ...


class Events:
    """Fans an event out to every listener and to the log; a failing listener is logged only."""

    def __init__(self, listeners: Iterable[ClientListener] = ()) -> None:
        self.listeners = list(listeners)

    def emit(self, name: str, **fields: Any) -> None:
        for listener in self.listeners:
            try:
                listener.event(name, **fields)
            except Exception:  # noqa: BLE001 - observability must never break a call
                log.exception("listener %r failed on event %s", listener, name)


class Bulkhead:
    """At most `limit` calls in flight; one more is refused at once instead of queueing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()  # a count under one lock: nothing ever waits for a slot
        self.in_use = 0
        self.rejected = 0

    def try_enter(self) -> bool:
        """Take a slot if one is free; never blocks."""
        with self._lock:
            if self.in_use >= self.limit:
                self.rejected += 1
                return False
            self.in_use += 1
            return True

    def leave(self) -> None:
        """Give a slot back (ValueError when none is taken: a leave without its enter)."""
        with self._lock:
            if self.in_use <= 0:
                raise ValueError("Bulkhead.leave() without a matching try_enter()")
            self.in_use -= 1


class RetryBudget:
    """Retries may add at most `ratio` of the request volume (a token bucket).

    Every request deposits `ratio` tokens (up to `cap`), every retry spends one, so a failing
    upstream never sees its load multiplied by retries.
    """

    def __init__(self, ratio: float = 0.2, cap: float = 10.0, initial: float = 3.0) -> None:
        self.ratio, self.cap = ratio, cap
        self._tokens = min(initial, cap)
        self._lock = threading.Lock()

    def deposit(self) -> None:
        """Record one request."""
        with self._lock:
            self._tokens = min(self.cap, self._tokens + self.ratio)

    @property
    def tokens(self) -> float:
        """Retries available now."""
        return self._tokens

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is one."""
        with self._lock:
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class BreakerListener(pybreaker.CircuitBreakerListener):
    """Logs and forwards a breaker's state changes as `breaker_state_change` events."""

    def __init__(self, service: str, instance: str, events: Events,
                 clock: Callable[[], float] = time.time) -> None:
        self.service, self.instance, self.events, self.clock = service, instance, events, clock
        self.changes: list[tuple[float, str, str]] = []

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        old = old_state.name if old_state else "none"
        new = new_state.name
        self.changes.append((self.clock(), old, new))
        del self.changes[:-20]
        log.warning(
            "breaker %s/%s: %s -> %s", self.service, self.instance, old, new,
            extra={"fields": {"service_upstream": self.service, "instance": self.instance,
                              "breaker_from": old, "breaker_to": new}},
        )
        self.events.emit("breaker_state_change", service=self.service, instance=self.instance,
                         old=old, new=new)
