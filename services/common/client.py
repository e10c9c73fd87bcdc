"""The resilient HTTP client for every call between processes (services and the gateway).

Calls go to an upstream service by name (see `services.common.upstream`): the bulkhead admits
or refuses at once, the least-busy usable instance is chosen, its breaker guards the attempt,
and an idempotent call that fails is retried once on another instance within the retry
budget. An instance that refuses connections is ejected while others serve. With
`resilience=False` the same calls go out naively: no bulkhead, no breaker, no retry and long
timeouts — the baseline the experiments compare against.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
from urllib3.util.retry import Retry

from services.common.discovery import instance_source
from services.common.errors import ApiError
from services.common.resilience import ClientListener, Events
from services.common.upstream import Instance, InstanceSource, Upstream, UpstreamPolicy

__all__ = [
    "FAILED_DEPENDENCY_HEADER", "ResilientClient", "build_client", "UpstreamError", "UpstreamPolicy",
    "UpstreamResponse", "UpstreamTimedOut", "UpstreamUnavailable",
]

FAILED_DEPENDENCY_HEADER = "X-Breakwater-Failed-Dependency"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A pooled keep-alive connection the server closed just as we reused it fails like this,
# before any response byte: safe to send again on a fresh connection when the call may repeat.
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# What `retries=False, redirect=False` becomes inside urllib3, built once: urlopen would build
# it on every call (Retry objects are immutable; increment() returns new ones).
NO_RETRIES = Retry.from_int(False, redirect=False)
_TIMEOUTS: dict[tuple[float, float], urllib3.Timeout] = {}


def _timeout(connect: float, read: float) -> urllib3.Timeout:
    """A shared `urllib3.Timeout` per (connect, read): urllib3 clones it per connection."""
    timeout = _TIMEOUTS.get((connect, read))
    if timeout is None:
        timeout = urllib3.Timeout(connect=connect, read=read)
        if len(_TIMEOUTS) < 64:  # the settings' few pairs; odd one-off values are not kept
            _TIMEOUTS[(connect, read)] = timeout
    return timeout


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


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    headers: urllib3.HTTPHeaderDict
    body: bytes | None
    repeatable: bool  # idempotent, or carrying an Idempotency-Key
    decode_content: bool


class ResilientClient:
    """Calls other services by name, protected per upstream and per instance."""

    def __init__(self, *, resilience: bool = True, listeners: Iterable[ClientListener] = (),
                 clock: Callable[[], float] | None = None) -> None:
        self.resilience = resilience
        self.events = Events(listeners)
        self.clock = clock or time.monotonic
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
        decode_content: bool = True,
    ) -> UpstreamResponse:
        """Send one request to `service`; see the module docstring for what protects it.

        4xx answers are returned. 5xx answers raise `UpstreamUnavailable` unless
        `raise_for_status=False` (a proxy forwards them). `decode_content=False` keeps a
        compressed body as sent, with its Content-Encoding.
        """
        upstream = self.upstreams.get(service)
        if upstream is None:
            raise UpstreamUnavailable(service, "no_instances", f"no upstream named {service!r} is configured")
        send_headers = urllib3.HTTPHeaderDict(headers or {})  # case-insensitive: one traceparent
        if json is not None:
            body = jsonlib.dumps(json).encode()
            send_headers.setdefault("Content-Type", "application/json")
        propagate.inject(send_headers)
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        call = _Call(method, path, send_headers, body,
                     repeatable=idempotent or "Idempotency-Key" in send_headers,
                     decode_content=decode_content)
        if not self.resilience:
            return self._naive(upstream, call, raise_for_status)
        upstream.count("requests")
        upstream.budget.deposit()
        if not upstream.bulkhead.try_enter():
            upstream.count("rejections")
            self.events.emit("rejected", service=service, reason="bulkhead_full")
            raise UpstreamUnavailable(service, "bulkhead_full",
                                      f"the {service} service is at its concurrency limit; try again shortly",
                                      retry_after=1)
        try:
            return self._protected(upstream, call, timeout, idempotent, raise_for_status)
        finally:
            upstream.bulkhead.leave()

    def _protected(self, upstream: Upstream, call: _Call, timeout: tuple[float, float] | None,
                   idempotent: bool, raise_for_status: bool) -> UpstreamResponse:
        policy = upstream.policy
        connect, read = timeout or (policy.connect_timeout, policy.read_timeout)
        tried: list[Instance] = []
        while True:
            instance = upstream.choose(exclude=tried)
            if instance is None:
                reason = "breaker_open" if upstream.instances() else "no_instances"
                upstream.count("rejections")
                self.events.emit("rejected", service=upstream.name, reason=reason)
                raise UpstreamUnavailable(upstream.name, reason, retry_after=policy.retry_after)
            tried.append(instance)
            try:
                response, own_failure = self._send(upstream, instance, call, connect, read)
            except UpstreamError as error:
                if not self._may_retry(upstream, tried, idempotent):
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
        upstream.count("retries")
        self.events.emit("retried", service=upstream.name, instance=instance.url, reason=reason)

    @staticmethod
    def _urlopen(instance: Instance, call: _Call, timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
        def once() -> urllib3.BaseHTTPResponse:
            return instance.pool.urlopen(
                call.method, call.path, body=call.body, headers=call.headers, timeout=timeout,
                retries=NO_RETRIES, redirect=False, assert_same_host=False,
                decode_content=call.decode_content,
            )

        try:
            return once()
        except ProtocolError as exc:
            stale = any(isinstance(arg, STALE_CONNECTION_ERRORS) for arg in exc.args)
            if not (stale and call.repeatable):
                raise
            return once()  # the failed connection was discarded: this one is fresh or alive

    def _send(self, upstream: Upstream, instance: Instance, call: _Call, connect: float,
              read: float) -> tuple[UpstreamResponse, bool]:
        """One attempt on one instance: the response and whether it was the instance's fault."""
        name, timeout = upstream.name, _timeout(connect, read)

        def attempt() -> urllib3.BaseHTTPResponse:
            response = self._urlopen(instance, call, timeout)
            if response.status >= 500 and FAILED_DEPENDENCY_HEADER not in response.headers:
                raise _ServerError(response)
            return response

        upstream.begin(instance)
        error: str | None = None
        try:
            raw = instance.breaker.call(attempt)
            return UpstreamResponse(raw.status, raw.headers, raw.data, instance.url), False
        except _ServerError as exc:
            raw = exc.response
            error = f"HTTP {raw.status}"
            return UpstreamResponse(raw.status, raw.headers, raw.data, instance.url), True
        except pybreaker.CircuitBreakerError as exc:
            raise UpstreamUnavailable(name, "breaker_open", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        except NewConnectionError as exc:  # refused: a subclass of ConnectTimeoutError, so first
            error = f"connection refused: {exc}"
            upstream.eject(instance)
            raise UpstreamUnavailable(name, "connection_failed", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        except ConnectTimeoutError as exc:
            error = f"connect timeout: {exc}"
            raise UpstreamUnavailable(name, "connect_timeout", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        except (ReadTimeoutError, TimeoutError) as exc:
            error = f"read timeout after {read:g}s"
            raise UpstreamTimedOut(name, read, instance=instance.url) from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise UpstreamUnavailable(name, "connection_failed", retry_after=upstream.policy.retry_after,
                                      instance=instance.url) from exc
        finally:
            upstream.end(instance, error)
            if error is not None:
                self.events.emit("failure", service=name, instance=instance.url, error=error[:300])

    def _naive(self, upstream: Upstream, call: _Call, raise_for_status: bool) -> UpstreamResponse:
        instance = upstream.choose(protected=False)
        if instance is None:
            raise UpstreamUnavailable(upstream.name, "no_instances")
        seconds = upstream.policy.naive_timeout
        try:
            raw = self._urlopen(instance, call, _timeout(seconds, seconds))
        except NewConnectionError as exc:
            raise UpstreamUnavailable(upstream.name, "connection_failed", instance=instance.url) from exc
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise UpstreamTimedOut(upstream.name, seconds, instance=instance.url) from exc
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


def build_client(*, resilience: bool, upstreams: Mapping[str, tuple[str, UpstreamPolicy]],
                 registry_file: str = "") -> ResilientClient:
    """A service's client: each upstream found through the registry file when the local
    supervisor keeps one, else from its spec (URL list or `dns://`), with events on spans."""
    from observability.resilience import TracingListener

    client = ResilientClient(resilience=resilience, listeners=[TracingListener()])
    for name, (spec, policy) in upstreams.items():
        client.add_upstream(name, instance_source(name, spec, registry_file), policy)
    return client
