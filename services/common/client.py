"""The resilient HTTP client for every call between processes (services and the gateway).

Per upstream service: a bulkhead and a retry budget. Per instance: a pooled urllib3
connection pool, a pybreaker circuit breaker and an outstanding-request count used for
least-outstanding balancing; an instance that refuses connections is ejected for a while
when others can serve. Reads (idempotent calls) are retried at most once, on another
instance, within the budget. With `resilience=False` the same calls go out naively: no
bulkhead, no breaker, no retry, long timeouts — the baseline experiments compare against.
"""

from __future__ import annotations

import json as jsonlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pybreaker
import urllib3
from opentelemetry import propagate
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from services.common.breaker import ConcurrentBreaker
from services.common.errors import ApiError
from services.common.resilience import (
    BreakerListener,
    Bulkhead,
    ClientListener,
    Events,
    RetryBudget,
)

FAILED_DEPENDENCY_HEADER = "X-Breakwater-Failed-Dependency"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

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


class UpstreamError(ApiError):
    """A call to another service failed; names the service so the caller's caller can tell."""

    def __init__(self, service: str, message: str, *, reason: str, status: int, code: str,
                 retry_after: int | None = None, instance: str | None = None) -> None:
        details = {"service": service, "reason": reason}
        if instance:
            details["instance"] = instance
        super().__init__(message, code=code, status=status, details=details, retry_after=retry_after,
                         headers={FAILED_DEPENDENCY_HEADER: service})
        self.service, self.reason, self.instance = service, reason, instance


class UpstreamUnavailable(UpstreamError):
    """503: the service cannot answer now (breaker open, bulkhead full, refused, 5xx)."""

    def __init__(self, service: str, reason: str, message: str | None = None, *,
                 retry_after: int = 5, instance: str | None = None) -> None:
        super().__init__(
            service, message or f"the {service} service is unavailable ({reason}); try again shortly",
            reason=reason, status=503, code=f"{service}_unavailable", retry_after=retry_after,
            instance=instance,
        )


class UpstreamTimedOut(UpstreamError):
    """504: the service did not answer within the read timeout."""

    def __init__(self, service: str, timeout: float, *, instance: str | None = None) -> None:
        super().__init__(
            service, f"the {service} service did not answer within {timeout:g}s; try again shortly",
            reason="timeout", status=504, code=f"{service}_timeout", retry_after=2, instance=instance,
        )


@dataclass
class UpstreamResponse:
    """What an upstream answered."""

    status: int
    headers: urllib3.HTTPHeaderDict
    data: bytes
    instance: str
    attempts: int = 1

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.data) if self.data else None


class _ServerError(Exception):
    """A 5xx that is the instance's own fault: raised inside the breaker so it counts."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        super().__init__(f"server error {response.status}")
        self.response = response


@dataclass
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
    """A named upstream service: its instances, bulkhead and retry budget."""

    def __init__(self, name: str, source: InstanceSource, policy: UpstreamPolicy,
                 events: Events, clock: Callable[[], float]) -> None:
        self.name, self.policy, self.events, self.clock = name, policy, events, clock
        self._source = source
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        self._urls: tuple[str, ...] = ()
        self._round_robin = 0
        self.bulkhead = Bulkhead(policy.max_concurrent)
        self.budget = RetryBudget(policy.retry_budget)
        self.counts = {"requests": 0, "retries": 0, "ejections": 0}

    def instances(self) -> list[Instance]:
        """The current instances, following the source when it changes."""
        urls = tuple(self._source() if callable(self._source) else self._source)
        if urls != self._urls:
            with self._lock:
                self._instances = {url: self._instances.get(url) or self._new_instance(url) for url in urls}
                self._urls = urls
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
        if not protected:
            if not candidates:
                return None
            with self._lock:
                self._round_robin += 1
                return candidates[self._round_robin % len(candidates)]
        now = self.clock()
        usable = [i for i in candidates if i.ejected_until <= now and i.breaker_state == pybreaker.STATE_CLOSED]
        if not usable:
            # No closed breaker: an instance whose open window has passed gets its half-open trial.
            usable = [i for i in candidates if i.ejected_until <= now and i.breaker.admits()]
        if not usable:
            return None
        with self._lock:
            self._round_robin += 1
            start = self._round_robin % len(usable)
            ordered = usable[start:] + usable[:start]
            return min(ordered, key=lambda i: i.outstanding)

    def eject(self, instance: Instance) -> None:
        """Take a refusing instance out for a while, unless it is the last one able to serve."""
        now = self.clock()
        others = [i for i in self.instances() if i is not instance and i.ejected_until <= now
                  and i.breaker_state != pybreaker.STATE_OPEN]
        if others:
            instance.ejected_until = now + self.policy.eject_seconds
            self.counts["ejections"] += 1
            self.events.emit("ejected", service=self.name, instance=instance.url,
                             seconds=self.policy.eject_seconds)

    def snapshot(self) -> dict[str, Any]:
        """The state of this upstream, for `/gateway/upstreams` and `breakwater status`."""
        now = self.clock()
        return {
            "policy": self.policy.__dict__,
            "bulkhead": {"limit": self.bulkhead.limit, "in_use": self.bulkhead.in_use,
                         "rejected": self.bulkhead.rejected},
            "counts": dict(self.counts),
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


class ResilientClient:
    """Calls other services by name, protected per upstream and per instance."""

    def __init__(self, *, resilience: bool = True, listeners: Iterable[ClientListener] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.resilience = resilience
        self.events = Events(listeners)
        self.clock = clock
        self.upstreams: dict[str, Upstream] = {}

    def add_upstream(self, service: str, instances: InstanceSource,
                     policy: UpstreamPolicy | None = None) -> Upstream:
        """Register (or replace) an upstream service and where its instances are."""
        upstream = Upstream(service, instances, policy or UpstreamPolicy(), self.events, self.clock)
        self.upstreams[service] = upstream
        return upstream

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
        timeout: tuple[float, float] | None = None,
        idempotent: bool | None = None,
        raise_for_status: bool = True,
    ) -> UpstreamResponse:
        """Send one request to `service`; see the module docstring for what protects it."""
        upstream = self.upstreams.get(service)
        if upstream is None:
            raise UpstreamUnavailable(service, "no_instances", f"no upstream named {service!r} is configured")
        send_headers = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json).encode()
            send_headers.setdefault("Content-Type", "application/json")
        propagate.inject(send_headers)
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if not self.resilience:
            return self._naive(upstream, method, path, send_headers, body, raise_for_status)
        upstream.counts["requests"] += 1
        upstream.budget.deposit()
        if not upstream.bulkhead.try_enter():
            self.events.emit("rejected", service=service, reason="bulkhead_full")
            raise UpstreamUnavailable(service, "bulkhead_full",
                                      f"the {service} service is at its concurrency limit; try again shortly",
                                      retry_after=1)
        try:
            return self._protected(upstream, method, path, send_headers, body, timeout,
                                   idempotent, raise_for_status)
        finally:
            upstream.bulkhead.leave()

    def _protected(self, upstream: Upstream, method: str, path: str, headers: dict[str, str],
                   body: bytes | None, timeout: tuple[float, float] | None, idempotent: bool,
                   raise_for_status: bool) -> UpstreamResponse:
        policy = upstream.policy
        connect, read = timeout or (policy.connect_timeout, policy.read_timeout)
        tried: list[Instance] = []
        while True:
            instance = upstream.choose(exclude=tried)
            if instance is None:
                self.events.emit("rejected", service=upstream.name, reason="breaker_open")
                reason = "breaker_open" if upstream.instances() else "no_instances"
                raise UpstreamUnavailable(upstream.name, reason, retry_after=policy.retry_after)
            tried.append(instance)
            try:
                response, own_failure = self._send(upstream, instance, method, path, headers, body,
                                                   connect, read)
            except UpstreamError as error:
                if not (error.reason != "breaker_open" and self._may_retry(upstream, tried, idempotent)):
                    raise
                self._note_retry(upstream, instance, error.reason)
                continue
            if own_failure and self._may_retry(upstream, tried, idempotent):
                self._note_retry(upstream, instance, f"http_{response.status}")
                continue
            response.attempts = len(tried)
            if raise_for_status and response.status >= 500:
                raise UpstreamUnavailable(upstream.name, "server_error",
                                          f"the {upstream.name} service answered {response.status}",
                                          retry_after=policy.retry_after, instance=instance.url)
            return response

    @staticmethod
    def _may_retry(upstream: Upstream, tried: list[Instance], idempotent: bool) -> bool:
        # Once, on another instance, and only while the budget allows it.
        return (idempotent and len(tried) < 2 and upstream.choose(exclude=tried) is not None
                and upstream.budget.try_spend())

    def _note_retry(self, upstream: Upstream, instance: Instance, reason: str) -> None:
        upstream.counts["retries"] += 1
        self.events.emit("retried", service=upstream.name, instance=instance.url, reason=reason)

    def _send(self, upstream: Upstream, instance: Instance, method: str, path: str,
              headers: dict[str, str], body: bytes | None, connect: float,
              read: float) -> tuple[UpstreamResponse, bool]:
        """One attempt on one instance: the response and whether it was the instance's fault."""
        name = upstream.name

        def attempt() -> urllib3.BaseHTTPResponse:
            response = instance.pool.urlopen(
                method, path, body=body, headers=headers, timeout=urllib3.Timeout(connect=connect, read=read),
                retries=False, redirect=False, assert_same_host=False,
            )
            if response.status >= 500 and FAILED_DEPENDENCY_HEADER not in response.headers:
                raise _ServerError(response)
            return response

        instance.outstanding += 1
        try:
            raw = instance.breaker.call(attempt)
            instance.served += 1
            return UpstreamResponse(raw.status, raw.headers, raw.data, instance.url), False
        except _ServerError as exc:
            instance.served += 1
            self._record(instance, f"HTTP {exc.response.status}")
            raw = exc.response
            return UpstreamResponse(raw.status, raw.headers, raw.data, instance.url), True
        except pybreaker.CircuitBreakerError as exc:
            self.events.emit("rejected", service=name, instance=instance.url, reason="breaker_open")
            raise UpstreamUnavailable(name, "breaker_open", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        except NewConnectionError as exc:  # refused: a subclass of ConnectTimeoutError, so first
            self._record(instance, f"connection refused: {exc}")
            upstream.eject(instance)
            raise UpstreamUnavailable(name, "connection_failed", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        except ConnectTimeoutError as exc:
            self._record(instance, f"connect timeout: {exc}")
            raise UpstreamUnavailable(name, "connect_timeout", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        except (ReadTimeoutError, TimeoutError) as exc:
            self._record(instance, f"read timeout: {exc}")
            raise UpstreamTimedOut(name, read, instance=instance.url) from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            self._record(instance, f"{type(exc).__name__}: {exc}")
            raise UpstreamUnavailable(name, "connection_failed", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        finally:
            instance.outstanding -= 1

    def _record(self, instance: Instance, error: str) -> None:
        instance.failures += 1
        instance.recent_errors.append({"at": time.time(), "error": error[:300]})
        self.events.emit("failure", instance=instance.url, error=error[:300])

    def _naive(self, upstream: Upstream, method: str, path: str, headers: dict[str, str],
               body: bytes | None, raise_for_status: bool) -> UpstreamResponse:
        instance = upstream.choose(protected=False)
        if instance is None:
            raise UpstreamUnavailable(upstream.name, "no_instances")
        timeout = upstream.policy.naive_timeout
        try:
            raw = instance.pool.urlopen(method, path, body=body, headers=headers,
                                        timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                        retries=False, redirect=False, assert_same_host=False)
        except NewConnectionError as exc:
            raise UpstreamUnavailable(upstream.name, "connection_failed", instance=instance.url) from exc
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise UpstreamTimedOut(upstream.name, timeout, instance=instance.url) from exc
        except (HTTPError, OSError) as exc:
            raise UpstreamUnavailable(upstream.name, "connection_failed", instance=instance.url) from exc
        if raise_for_status and raw.status >= 500:
            raise UpstreamUnavailable(upstream.name, "server_error",
                                      f"the {upstream.name} service answered {raw.status}", instance=instance.url)
        return UpstreamResponse(raw.status, raw.headers, raw.data, instance.url)

    def snapshot(self) -> dict[str, Any]:
        """Every upstream's state (instances, breakers, bulkhead, counters)."""
        return {"resilience": self.resilience,
                "upstreams": {name: upstream.snapshot() for name, upstream in self.upstreams.items()}}

    def close(self) -> None:
        """Close every pooled connection."""
        for upstream in self.upstreams.values():
            for instance in upstream.instances():
                instance.pool.close()
