"""An upstream service as the resilient client sees it: its instances and their health.

Per upstream: a bulkhead, a retry budget and counters. Per instance: a pool of keep-alive
connections (`services.common.transport`), a breaker judging it by failure and slow-call rate,
an outstanding-request count for least-outstanding balancing, and an ejection deadline.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from services.common.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerPolicy
from services.common.resilience import BreakerListener, Bulkhead, Events, RetryBudget
from services.common.transport import KeepAlivePool

if TYPE_CHECKING:
    import asyncio

    from services.common.loop_transport import LoopPool

InstanceSource = Sequence[str] | Callable[[], Sequence[str]]


@dataclass(frozen=True)
class UpstreamPolicy:
    """How calls to one upstream service are protected (every field has a sane default)."""

    connect_timeout: float = 0.5
    read_timeout: float = 2.0  # one attempt's whole answer, from sending to the last byte
    call_timeout: float = 0.0  # a whole call, retry included (0: room for two attempts)
    max_concurrent: int = 32
    # The breaker (see services.common.breaker): rates over a window, and a consecutive run.
    failure_threshold: int = 5  # failures in a row that open at once (0: off)
    failure_rate_threshold: float = 0.5
    slow_call_rate_threshold: float = 1.0
    slow_call_seconds: float = 1.5
    window: str = "count"
    window_size: int = 20
    minimum_calls: int = 10
    reset_timeout: float = 5.0
    retry_budget: float = 0.2  # retries may add this share of the calls
    retry_budget_initial: float = 3.0
    eject_seconds: float = 5.0
    pool_maxsize: int = 32
    retry_after: int = 5
    naive_timeout: float = 30.0

    def breaker_policy(self) -> BreakerPolicy:
        """The breaker settings of this policy."""
        return BreakerPolicy(
            failure_rate_threshold=self.failure_rate_threshold,
            slow_call_rate_threshold=self.slow_call_rate_threshold,
            slow_call_seconds=self.slow_call_seconds, window=self.window, window_size=self.window_size,
            minimum_calls=self.minimum_calls, consecutive_failures=self.failure_threshold,
            reset_timeout=self.reset_timeout,
        )

    def with_overrides(self, text: str) -> UpstreamPolicy:
        """This policy with `field=value,...` applied (ValueError naming a bad part)."""
        kinds = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        changes: dict[str, Any] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            name, _, raw = (piece.strip() for piece in part.partition("="))
            if name not in kinds or not raw:
                raise ValueError(f"policy override {part.strip()!r}: use <field>=<value> with a field among "
                                 f"{', '.join(kinds)}")
            try:
                changes[name] = kinds[name](raw)
            except ValueError as exc:
                raise ValueError(f"policy override {part.strip()!r}: {exc}") from exc
        policy = replace(self, **changes)
        policy.breaker_policy()  # refuses nonsense now, not on the first call
        return policy

    def call_budget(self, connect: float, read: float) -> float:
        """The total budget of a call whose attempts have these timeouts."""
        return self.call_timeout or 2 * (connect + read)


@dataclass(eq=False)
class Instance:
    """One replica of an upstream service."""

    url: str
    pool: KeepAlivePool
    breaker: Breaker
    listener: BreakerListener
    outstanding: int = 0
    ejected_until: float = 0.0
    served: int = 0
    failures: int = 0
    recent_errors: deque = field(default_factory=lambda: deque(maxlen=10))

    # The pool the first call from an event loop makes there, and that loop.
    _loop_pool: LoopPool | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)

    @property
    def breaker_state(self) -> str:
        """closed, open or half-open."""
        return self.breaker.state

    def loop_pool(self) -> LoopPool:
        """This instance's keep-alive pool on the running event loop (one loop per process:
        the gateway's), made on first use."""
        pool = self._loop_pool
        if pool is None:
            import asyncio

            from services.common.loop_transport import LoopPool

            pool = LoopPool(self.pool.scheme, self.pool.host, self.pool.port, self.pool.maxsize)
            self._loop_pool, self._loop = pool, asyncio.get_running_loop()
        return pool

    def close(self) -> None:
        """Close the idle connections of both pools (the loop's on its own thread)."""
        self.pool.close()
        pool, loop = self._loop_pool, self._loop
        if pool is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(pool.close)


class Upstream:
    """A named upstream service: its instances, bulkhead, retry budget and counters."""

    def __init__(self, name: str, source: InstanceSource, policy: UpstreamPolicy,
                 events: Events, clock: Callable[[], float]) -> None:
        self.name, self.policy, self.events, self.clock = name, policy, events, clock
        self._breaker_policy = policy.breaker_policy()
        self._source = source
        self._lock = threading.Lock()  # guards instances, counters and the round-robin cursor
        self._instances: dict[str, Instance] = {}
        self._urls: tuple[str, ...] = ()
        self._round_robin = 0
        self.bulkhead = Bulkhead(policy.max_concurrent)
        self.budget = RetryBudget(policy.retry_budget, initial=policy.retry_budget_initial)
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
                            gone.close()
                    self._instances, self._urls = kept, urls
        return list(self._instances.values())

    def instance(self, url: str) -> Instance | None:
        """The instance at `url`, if it is one of this upstream's."""
        return self._instances.get(url)

    def _new_instance(self, url: str) -> Instance:
        parts = urlsplit(url)
        pool = KeepAlivePool(parts.scheme, parts.hostname or "127.0.0.1", parts.port,
                             self.policy.pool_maxsize)
        listener = BreakerListener(self.name, url, self.events)
        breaker = Breaker(f"{self.name}:{url}", self._breaker_policy, listeners=[listener], clock=self.clock)
        return Instance(url=url, pool=pool, breaker=breaker, listener=listener)

    def choose(self, exclude: Iterable[Instance] = (), protected: bool = True,
               trial_ok: bool = True) -> Instance | None:
        """The instance for the next attempt, or None when none may be called.

        A replica whose trial is due gets it first (when `trial_ok`: the call may be sent again
        elsewhere if the trial fails, or nothing else is closed), so a recovered replica rejoins
        while others serve. Otherwise the least busy closed replica, round robin among equals.
        """
        candidates = [i for i in self.instances() if i not in exclude]
        if not protected:
            return self._round_robin_pick(candidates)
        now = self.clock()
        closed, trials = [], []
        for instance in candidates:
            if instance.ejected_until > now:
                continue
            state = instance.breaker_state  # one look each: it may turn half-open by time here
            if state == CLOSED:
                closed.append(instance)
            elif state == HALF_OPEN:
                trials.append(instance)
        if trials and (trial_ok or not closed):
            due = [i for i in trials if i.breaker.trial_due()]
            if due:
                return self._round_robin_pick(due)
        if not closed:
            return None
        with self._lock:
            self._round_robin += 1
            start = self._round_robin % len(closed)
            ordered = closed[start:] + closed[:start]
            return min(ordered, key=lambda i: i.outstanding)

    def _round_robin_pick(self, instances: list[Instance]) -> Instance | None:
        if not instances:
            return None
        with self._lock:
            self._round_robin += 1
            return instances[self._round_robin % len(instances)]

    def seconds_to_next_trial(self) -> float:
        """The soonest any instance may be tried again (for `Retry-After`)."""
        waits = [w for w in (i.breaker.next_trial_in() for i in self.instances()) if w is not None]
        return min(waits) if waits else float(self.policy.retry_after)

    def retry_after(self) -> int:
        """Whole seconds a refused caller should wait (at least one)."""
        return max(1, math.ceil(self.seconds_to_next_trial()))

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
                  and i.breaker_state != OPEN]
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
        instances = []
        for i in self.instances():
            breaker = i.breaker.view()
            instances.append({
                "url": i.url,
                "breaker": breaker.pop("state"),
                **breaker,
                "outstanding": i.outstanding,
                "ejected_for": round(max(0.0, i.ejected_until - now), 3),
                "served": i.served,
                "failures": i.failures,
                "recent_errors": list(i.recent_errors),
                "breaker_changes": [{"at": at, "from": old, "to": new} for at, old, new in i.listener.changes],
            })
        return {
            "policy": asdict(self.policy),
            "bulkhead": {"limit": self.bulkhead.limit, "in_use": self.bulkhead.in_use,
                         "rejected": self.bulkhead.rejected},
            "retry_budget": round(self.budget.tokens, 2),
            "counts": counts,
            "instances": instances,
        }
