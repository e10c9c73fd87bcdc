"""An upstream service as the resilient client sees it: its instances and their health.

Per upstream: a bulkhead, a retry budget and counters. Per instance: a pooled urllib3
connection pool, a concurrent-safe pybreaker breaker, an outstanding-request count for
least-outstanding balancing, and an ejection deadline.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pybreaker
import urllib3

from services.common.breaker import ConcurrentBreaker
from services.common.resilience import BreakerListener, Bulkhead, Events, RetryBudget

InstanceSource = Sequence[str] | Callable[[], Sequence[str]]


@dataclass(frozen=True)
class UpstreamPolicy:
    """How calls to one upstream service are protected."""

    connect_timeout: float = 0.5
    read_timeout: float = 2.0
    max_concurrent: int = 32
    failure_threshold: int = 5
    reset_timeout: float = 5.0
    retry_budget: float = 0.2
    eject_seconds: float = 5.0
    pool_maxsize: int = 32
    retry_after: int = 5
    naive_timeout: float = 30.0


@dataclass(eq=False)
class Instance:
    """One replica of an upstream service."""

    url: str
    pool: urllib3.HTTPConnectionPool
    breaker: ConcurrentBreaker
    listener: BreakerListener
    outstanding: int = 0
    ejected_until: float = 0.0
    served: int = 0
    failures: int = 0
    recent_errors: deque = field(default_factory=lambda: deque(maxlen=10))

    @property
    def breaker_state(self) -> str:
        return self.breaker.current_state


class Upstream:
    """A named upstream service: its instances, bulkhead, retry budget and counters."""

    def __init__(self, name: str, source: InstanceSource, policy: UpstreamPolicy,
                 events: Events, clock: Callable[[], float]) -> None:
        self.name, self.policy, self.events, self.clock = name, policy, events, clock
        self._source = source
        self._lock = threading.Lock()  # guards instances, counters and the round-robin cursor
        self._instances: dict[str, Instance] = {}
        self._urls: tuple[str, ...] = ()
        self._round_robin = 0
        self.bulkhead = Bulkhead(policy.max_concurrent)
        self.budget = RetryBudget(policy.retry_budget)
        self.counts = {"requests": 0, "retries": 0, "ejections": 0, "rejections": 0}

    def count(self, name: str) -> None:
        """Add one to an upstream counter."""
        with self._lock:
            self.counts[name] += 1

    def instances(self) -> list[Instance]:
        """The current instances, following the source when it changes."""
        urls = tuple(self._source() if callable(self._source) else self._source)
        if urls != self._urls:
            with self._lock:
                if urls != self._urls:
                    kept = {url: self._instances.get(url) or self._new_instance(url) for url in urls}
                    for url, gone in self._instances.items():
                        if url not in kept:
                            gone.pool.close()
                    self._instances, self._urls = kept, urls
        return list(self._instances.values())

    def _new_instance(self, url: str) -> Instance:
        parts = urlsplit(url)
        pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        pool = pool_class(parts.hostname, parts.port, maxsize=self.policy.pool_maxsize, block=False,
                          retries=False)
        listener = BreakerListener(self.name, url, self.events)
        breaker = ConcurrentBreaker(
            fail_max=self.policy.failure_threshold, reset_timeout=self.policy.reset_timeout,
            listeners=[listener], name=f"{self.name}:{url}", throw_new_error_on_trip=False,
        )
        return Instance(url=url, pool=pool, breaker=breaker, listener=listener)

    def choose(self, exclude: Iterable[Instance] = (), protected: bool = True) -> Instance | None:
        """The least-busy usable instance (round robin among equals), or None."""
        candidates = [i for i in self.instances() if i not in exclude]
        if protected:
            now = self.clock()
            usable = [i for i in candidates
                      if i.ejected_until <= now and i.breaker_state == pybreaker.STATE_CLOSED]
            if not usable:
                # No closed breaker: an instance whose open window has passed gets its trial.
                usable = [i for i in candidates if i.ejected_until <= now and i.breaker.admits()]
        else:
            usable = candidates
        if not usable:
            return None
        with self._lock:
            self._round_robin += 1
            start = self._round_robin % len(usable)
            ordered = usable[start:] + usable[:start]
            return ordered[0] if not protected else min(ordered, key=lambda i: i.outstanding)

    def begin(self, instance: Instance) -> None:
        """Count a call going out to `instance`."""
        with self._lock:
            instance.outstanding += 1

    def end(self, instance: Instance, error: str | None = None) -> None:
        """Count a call to `instance` finished (with `error` when it failed)."""
        with self._lock:
            instance.outstanding -= 1
            instance.served += 1
            if error is not None:
                instance.failures += 1
                instance.recent_errors.append({"at": time.time(), "error": error[:300]})

    def eject(self, instance: Instance) -> None:
        """Take a refusing instance out for a while, unless it is the last one able to serve."""
        now = self.clock()
        others = [i for i in self.instances() if i is not instance and i.ejected_until <= now
                  and i.breaker_state != pybreaker.STATE_OPEN]
        if others:
            instance.ejected_until = now + self.policy.eject_seconds
            self.count("ejections")
            self.events.emit("ejected", service=self.name, instance=instance.url,
                             seconds=self.policy.eject_seconds)

    def snapshot(self) -> dict[str, Any]:
        """The state of this upstream, for `/gateway/upstreams` and `breakwater status`."""
        now = self.clock()
        with self._lock:
            counts = dict(self.counts)
        return {
            "policy": asdict(self.policy),
            "bulkhead": {"limit": self.bulkhead.limit, "in_use": self.bulkhead.in_use,
                         "rejected": self.bulkhead.rejected},
            "counts": counts,
            "instances": [
                {
                    "url": i.url,
                    "breaker": i.breaker_state,
                    "failures_in_a_row": i.breaker.fail_counter,
                    "outstanding": i.outstanding,
                    "ejected_for": round(max(0.0, i.ejected_until - now), 3),
                    "served": i.served,
                    "failures": i.failures,
                    "recent_errors": list(i.recent_errors),
                    "breaker_changes": [
                        {"at": at, "from": old, "to": new} for at, old, new in i.listener.changes
                    ],
                }
                for i in self.instances()
            ],
        }
