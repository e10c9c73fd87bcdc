"""The resilient HTTP client for every call between processes (services and the gateway).

Calls go to an upstream service by name (see `services.common.upstream`). Every call has a
deadline: its own budget (`deadline=`, else the policy's), cut to the deadline of the request
being served (`services.common.deadline`), and sent downstream in `X-Breakwater-Deadline-Ms`.
The bulkhead admits or refuses at once; the replica whose breaker trial is due, else the
least-busy closed one, is chosen; its breaker guards the attempt, and one attempt's whole
answer is bounded (`services.common.watchdog`), not each socket read.

A failed call is sent again at most once, within the retry budget and the deadline: on another
replica when the caller declared it safe to repeat (`idempotent=`, never inferred from headers)
or when nothing reached the first replica (refused, breaker open); on the same replica with a
fresh connection when a reused keep-alive connection turned out stale and the call may repeat.
`UpstreamError.uncertain` says whether any attempt may have reached the server. With
`resilience=False` the same calls go out naively: no bulkhead, no breaker, no retry, no
deadline and long timeouts, the baseline the experiments compare against.

A call's decisions are written once, as a generator of the exchanges to make (`_steps`);
`request` makes them on the calling thread (`KeepAlivePool`), `request_async` on an event
loop (`LoopPool`, the gateway's public reads), so both behave alike by construction.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry import propagate
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from observability.http_client import client_span, record_status
from services.common.breaker import BreakerOpen
from services.common.deadline import DEADLINE_HEADER, Deadline, current_deadline
from services.common.discovery import instance_source
from services.common.resilience import ClientListener, Events
from services.common.transport import Reply
from services.common.upstream import Instance, InstanceSource, Upstream, UpstreamPolicy
from services.common.upstream_errors import (
    FAILED_DEPENDENCY_HEADER,
    UpstreamError,
    UpstreamTimedOut,
    UpstreamUnavailable,
)
from services.common.watchdog import Watch

__all__ = [
    "DEADLINE_HEADER", "FAILED_DEPENDENCY_HEADER", "ResilientClient", "build_client", "UpstreamError",
    "UpstreamPolicy", "UpstreamResponse", "UpstreamTimedOut", "UpstreamUnavailable",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ATTEMPTS = 2  # the first send and at most one more
_DEADLINE_KEY = DEADLINE_HEADER.lower()
MIN_ATTEMPT_SECONDS = 0.005  # less budget than this left: do not start another attempt
# A pooled keep-alive connection the server closed just as we reused it fails like this,
# before any response byte.
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass
class UpstreamResponse:
    """What an upstream answered."""

    status: int
    headers: HTTPHeaderDict
    data: bytes
    instance: str
    attempts: int = 1

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.data) if self.data else None


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a call per field
class _Call:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes | None
    repeatable: bool  # declared safe to send twice by the caller
    decode_content: bool


@dataclass(slots=True)
class _Plan:
    connect: float
    read: float
    deadline: Deadline  # the call's own budget, or the caller's deadline if that comes first
    own_expires: float  # when the call's own budget ends


class _Send(NamedTuple):
    """One exchange for a driver to perform: the call, to this instance, with these limits."""

    instance: Instance
    call: _Call
    connect: float
    read: float
    watch: Watch | None


# A call's decisions as a generator: it yields the exchanges to perform and is sent each
# exchange's answer (or thrown its error); `request` performs them on this thread,
# `request_async` on an event loop. Both run exactly the same decisions.
Steps = Generator[_Send, Reply, UpstreamResponse]


@dataclass
class _Attempt:
    """What one send did: an answer (and whether it was the replica's own 5xx) or an error."""

    response: UpstreamResponse | None = None
    own_failure: bool = False
    error: UpstreamError | None = None
    stale: bool = False  # a reused keep-alive connection failed before any answer


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
        deadline: float | None = None,
        idempotent: bool | None = None,
        raise_for_status: bool = True,
        decode_content: bool = True,
    ) -> UpstreamResponse:
        """Send one request to `service`; see the module docstring for what protects it.

        `timeout` is (connect, read) of one attempt; `deadline` the seconds the whole call may
        take (default: the policy's). `idempotent` declares the call safe to send twice
        (default: GET, HEAD, OPTIONS). 4xx answers are returned; 5xx answers raise
        `UpstreamUnavailable` unless `raise_for_status=False` (a proxy forwards them).
        `decode_content=False` keeps a compressed body as sent, with its Content-Encoding.
        """
        steps = self._steps(service, method, path, headers, body, json, timeout, deadline,
                            idempotent, raise_for_status, decode_content)
        outcome: Reply | BaseException | None = None
        while True:
            try:
                send = _advance(steps, outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                outcome = self._exchange(*send)
            except BaseException as exc:  # noqa: BLE001 - handed to the steps, which decide
                outcome = exc

    async def request_async(
        self,
        service: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
        idempotent: bool | None = None,
        raise_for_status: bool = True,
        decode_content: bool = True,
    ) -> UpstreamResponse:
        """`request` on an event loop: the same decisions (bulkhead, breakers, balancing,
        deadline, watch, retry), each exchange made by the instance's `LoopPool`.

        Nothing here blocks; call it from one event loop per process (each instance keeps
        one loop pool, bound to the loop that first used it)."""
        steps = self._steps(service, method, path, headers, body, json, timeout, deadline,
                            idempotent, raise_for_status, decode_content)
        outcome: Reply | BaseException | None = None
        while True:
            try:
                send = _advance(steps, outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                outcome = await self._exchange_async(*send)
            except BaseException as exc:  # noqa: BLE001 - handed to the steps, which decide
                outcome = exc

    def _steps(self, service: str, method: str, path: str, headers: Mapping[str, str] | None,
               body: bytes | None, json: Any, timeout: tuple[float, float] | None,
               deadline: float | None, idempotent: bool | None, raise_for_status: bool,
               decode_content: bool) -> Steps:
        """Every decision of one call, the exchanges left to the driver."""
        upstream = self.upstreams.get(service)
        if upstream is None:
            raise UpstreamUnavailable(service, "no_instances", f"no upstream named {service!r} is configured")
        # Names in lower case: one spelling each, so the trace context replaces a caller's own.
        send_headers = {name.lower(): value for name, value in headers.items()} if headers else {}
        if json is not None:
            body = jsonlib.dumps(json).encode()
            send_headers.setdefault("content-type", "application/json")
        propagate.inject(send_headers)
        method = method.upper()
        call = _Call(method, path, send_headers, body,
                     repeatable=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
                     decode_content=decode_content)
        if not self.resilience:
            send_headers.pop(_DEADLINE_KEY, None)
            return (yield from self._naive(upstream, call, raise_for_status))
        policy = upstream.policy
        connect, read = timeout or (policy.connect_timeout, policy.read_timeout)
        own = Deadline.after(policy.call_budget(connect, read) if deadline is None else deadline)
        plan = _Plan(connect, read, own.earliest(current_deadline()), own.expires_at)
        upstream.count("requests")
        upstream.budget.deposit()
        if plan.deadline.expired:
            upstream.count("rejections")
            self.events.emit("rejected", service=service, reason="deadline_exceeded")
            raise UpstreamTimedOut(service, 0.0, reason="deadline_exceeded", uncertain=False)
        if not upstream.bulkhead.try_enter():
            upstream.count("rejections")
            self.events.emit("rejected", service=service, reason="bulkhead_full")
            raise UpstreamUnavailable(service, "bulkhead_full",
                                      f"the {service} service is at its concurrency limit; try again shortly",
                                      retry_after=1, uncertain=False)
        try:
            return (yield from self._protected(upstream, call, plan, raise_for_status))
        finally:
            upstream.bulkhead.leave()

    def _protected(self, upstream: Upstream, call: _Call, plan: _Plan,
                   raise_for_status: bool) -> Steps:
        tried: list[Instance] = []
        sent = False  # whether any attempt may have reached a server
        sends = 0
        resend_on: Instance | None = None
        while True:
            instance = resend_on or upstream.choose(exclude=tried, trial_ok=call.repeatable)
            resend_on = None
            if instance is None:
                raise self._nobody_to_call(upstream, sent)
            if instance not in tried:
                tried.append(instance)
            sends += 1
            attempt = yield from self._attempt(upstream, instance, call, plan)
            error = attempt.error
            if error is not None:
                sent = sent or error.uncertain
                if sends < MAX_ATTEMPTS and self._may_retry(upstream, call, plan, tried, instance,
                                                            reached=error.uncertain, stale=attempt.stale):
                    self._note_retry(upstream, instance, error.reason)
                    resend_on = instance if attempt.stale else None
                    continue
                error.uncertain = sent
                raise error
            response = attempt.response
            assert response is not None
            if attempt.own_failure and sends < MAX_ATTEMPTS and self._may_retry(
                    upstream, call, plan, tried, instance, reached=True, stale=False):
                self._note_retry(upstream, instance, f"http_{response.status}")
                sent = True
                continue
            response.attempts = sends
            if raise_for_status and response.status >= 500:
                raise UpstreamUnavailable(upstream.name, "server_error",
                                          f"the {upstream.name} service answered {response.status}",
                                          retry_after=upstream.policy.retry_after, instance=instance.url,
                                          uncertain=True)
            return response

    def _nobody_to_call(self, upstream: Upstream, sent: bool) -> UpstreamUnavailable:
        known = bool(upstream.instances())
        reason = "breaker_open" if known else "no_instances"
        upstream.count("rejections")
        self.events.emit("rejected", service=upstream.name, reason=reason)
        retry_after = upstream.retry_after() if known else upstream.policy.retry_after
        return UpstreamUnavailable(upstream.name, reason, retry_after=retry_after, uncertain=sent)

    @staticmethod
    def _may_retry(upstream: Upstream, call: _Call, plan: _Plan, tried: list[Instance],
                   instance: Instance, *, reached: bool, stale: bool) -> bool:
        """Only if safe (declared repeatable, or nothing reached the server), within the
        deadline and the retry budget: on the same replica after a stale connection, else on
        another one."""
        if reached and not call.repeatable:
            return False
        if plan.deadline.remaining() < MIN_ATTEMPT_SECONDS:
            return False
        if stale:
            if not instance.breaker.admits():
                return False
        elif upstream.choose(exclude=tried, trial_ok=call.repeatable) is None:
            return False
        return upstream.budget.try_spend()

    def _note_retry(self, upstream: Upstream, instance: Instance, reason: str) -> None:
        upstream.count("retries")
        self.events.emit("retried", service=upstream.name, instance=instance.url, reason=reason)

    def _attempt(self, upstream: Upstream, instance: Instance, call: _Call,
                 plan: _Plan) -> Generator[_Send, Reply, _Attempt]:
        """One send to one instance, under its breaker, bounded by a watch."""
        name, url = upstream.name, instance.url
        try:
            permit = instance.breaker.acquire()
        except BreakerOpen:
            return _Attempt(error=UpstreamUnavailable(name, "breaker_open", retry_after=upstream.retry_after(),
                                                      instance=url, uncertain=False))
        remaining = plan.deadline.remaining()
        connect, read = min(plan.connect, remaining), min(plan.read, remaining)
        watch = Watch(plan.read, plan.deadline.expires_at, plan.own_expires)
        call.headers[_DEADLINE_KEY] = plan.deadline.header_value()
        upstream.begin(instance)
        failure: str | None = None
        verdict = "failure"  # or "success", or "none" (the attempt says nothing about the replica)
        try:
            raw = yield _Send(instance, call, connect, read, watch)
        except (HTTPError, OSError) as exc:
            attempt, verdict = self._classify(upstream, instance, exc, watch, read,
                                              connect_capped=remaining < plan.connect)
            failure = None if attempt.stale else f"{type(exc).__name__}: {exc}"
            if attempt.error is not None:
                attempt.error.__cause__ = exc
            return attempt
        except BaseException as exc:
            if not isinstance(exc, Exception):
                verdict = "none"  # cancelled or interrupted: nothing was learnt about the replica
            raise
        else:
            response = UpstreamResponse(raw.status, raw.headers, raw.data, url)
            own_failure = raw.status >= 500 and FAILED_DEPENDENCY_HEADER not in raw.headers
            verdict = "failure" if own_failure else "success"
            failure = f"HTTP {raw.status}" if own_failure else None
            return _Attempt(response=response, own_failure=own_failure)
        finally:
            if verdict == "none":
                instance.breaker.release(permit)
            else:
                instance.breaker.record(permit, failed=verdict == "failure")
            upstream.end(instance, failure)
            if failure is not None:
                self.events.emit("failure", service=name, instance=url, error=failure[:300])

    @staticmethod
    def _exchange(instance: Instance, call: _Call, connect: float, read: float,
                  watch: Watch | None) -> Reply:
        """Send and read the whole answer; the watch cuts it off at its expiry."""
        pool = instance.pool
        with client_span(call.method, pool, call.path, call.headers) as span:
            return _whole(pool.exchange(call.method, call.path, call.headers, call.body,
                                        connect_timeout=connect, read_timeout=read, watch=watch,
                                        decode_content=call.decode_content), watch, span)

    @staticmethod
    async def _exchange_async(instance: Instance, call: _Call, connect: float, read: float,
                              watch: Watch | None) -> Reply:
        """`_exchange` on the event loop, through the instance's loop pool."""
        pool = instance.loop_pool()
        with client_span(call.method, pool, call.path, call.headers) as span:
            return _whole(await pool.exchange(call.method, call.path, call.headers, call.body,
                                              connect_timeout=connect, read_timeout=read,
                                              watch=watch, decode_content=call.decode_content),
                          watch, span)

    def _classify(self, upstream: Upstream, instance: Instance, exc: BaseException, watch: Watch,
                  read: float, *, connect_capped: bool) -> tuple[_Attempt, str]:
        """The error of a failed send, and its verdict for the breaker."""
        name, url, retry_after = upstream.name, instance.url, upstream.policy.retry_after
        # Connection errors first: whatever the watch did meanwhile, nothing was sent.
        if isinstance(exc, NewConnectionError):  # refused: a subclass of ConnectTimeoutError, so first
            upstream.eject(instance)
            return _Attempt(error=UpstreamUnavailable(name, "connection_failed", retry_after=retry_after,
                                                      instance=url, uncertain=False)), "failure"
        if isinstance(exc, ConnectTimeoutError):
            # Cut short by the caller's deadline, a timeout says nothing about the replica.
            return _Attempt(error=UpstreamUnavailable(name, "connect_timeout", retry_after=retry_after,
                                                      instance=url, uncertain=False)), (
                "none" if connect_capped else "failure")
        if watch.fired or isinstance(exc, ReadTimeoutError | TimeoutError):
            verdict = "none" if watch.cut_by_caller else "failure"
            return _Attempt(error=UpstreamTimedOut(name, read, instance=url)), verdict
        stale = (watch.reused and isinstance(exc, ProtocolError)
                 and any(isinstance(arg, STALE_CONNECTION_ERRORS) for arg in exc.args))
        error = UpstreamUnavailable(name, "connection_failed", retry_after=retry_after, instance=url,
                                    uncertain=True)
        return _Attempt(error=error, stale=stale), "none" if stale else "failure"

    @staticmethod
    def _naive(upstream: Upstream, call: _Call, raise_for_status: bool) -> Steps:
        instance = upstream.choose(protected=False)
        if instance is None:
            raise UpstreamUnavailable(upstream.name, "no_instances")
        seconds = upstream.policy.naive_timeout
        try:
            raw = yield _Send(instance, call, seconds, seconds, None)
        except NewConnectionError as exc:
            raise UpstreamUnavailable(upstream.name, "connection_failed", instance=instance.url,
                                      uncertain=False) from exc
        except ConnectTimeoutError as exc:
            raise UpstreamTimedOut(upstream.name, seconds, instance=instance.url, uncertain=False) from exc
        except ReadTimeoutError as exc:
            raise UpstreamTimedOut(upstream.name, seconds, instance=instance.url) from exc
        except (HTTPError, OSError) as exc:
            raise UpstreamUnavailable(upstream.name, "connection_failed", instance=instance.url,
                                      uncertain=True) from exc
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
                instance.close()


def _advance(steps: Steps, outcome: Reply | BaseException | None) -> _Send:
    """The next exchange a call's steps ask for, once sent the last one's answer or thrown
    its error (StopIteration carries the call's response)."""
    if isinstance(outcome, BaseException):
        return steps.throw(outcome)
    return steps.send(outcome)  # type: ignore[arg-type]


def _whole(reply: Reply, watch: Watch | None, span: Any) -> Reply:
    """An attempt's answer, unless its watch fired first (the answer may be cut short)."""
    if watch is not None and watch.fired:
        raise TimeoutError("the answer did not complete within the attempt's time limit")
    record_status(span, reply.status)
    return reply


def build_client(*, resilience: bool, upstreams: Mapping[str, tuple[str, UpstreamPolicy]],
                 registry_file: str = "") -> ResilientClient:
    """A service's client: each upstream found through the registry file when the local
    supervisor keeps one, else from its spec (URL list or `dns://`), with events on spans."""
    from observability.resilience import TracingListener

    client = ResilientClient(resilience=resilience, listeners=[TracingListener()])
    for name, (spec, policy) in upstreams.items():
        client.add_upstream(name, instance_source(name, spec, registry_file), policy)
    return client
