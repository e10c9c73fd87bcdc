"""The hot path: a raw WSGI callable that forwards `/api/*` to the upstream services.

Per request: match the route, run the edge checks (headers, token, login rate, body size),
forward through the resilient client, and answer with the upstream's response, a stale catalog
response, or a JSON error. No Flask on this path (it costs ≈0.3 ms a request here).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import quote

from gateway.admission import Admission, overloaded
from gateway.config import GatewaySettings
from gateway.edge import EdgeAuth, LoginRateLimiter, check_header_limits, client_ip, request_id
from gateway.fallback import STALE_HEADERS, StaleCache
from gateway.metrics import GatewayMetrics
from gateway.routes import READ_METHODS, ROUTES, Route, match_route
from observability.resilience import mark_fallback
from services.common.client import ResilientClient, UpstreamError, UpstreamResponse
from services.common.deadline import (
    DEADLINE_ENVIRON_KEY,
    Deadline,
    deadline_scope,
    parse_budget,
    spent,
)
from services.common.errors import ApiError, BadRequest, NotFound
from services.common.request_limits import relative_location

# The transport decodes these, so the body the gateway holds is no longer encoded.
from services.common.transport import DECODED_ENCODINGS

log = logging.getLogger("breakwater.gateway")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the gateway sets itself, as WSGI environ keys.
REQUEST_SKIP = frozenset(
    {
        "HTTP_HOST",
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_TE",
        "HTTP_TRAILER",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_UPGRADE",
        "HTTP_EXPECT",
        "HTTP_CONTENT_LENGTH",
        "HTTP_X_REQUEST_ID",
        # Who the client is and what it asked for are the gateway's to say: a client's own
        # forwarding headers are dropped, whatever their spelling (it sets X-Forwarded-*).
        "HTTP_FORWARDED",
        "HTTP_X_REAL_IP",
        "HTTP_X_CLIENT_IP",
        "HTTP_CLIENT_IP",
        "HTTP_TRUE_CLIENT_IP",
        "HTTP_CF_CONNECTING_IP",
        "HTTP_FASTLY_CLIENT_IP",
        "HTTP_X_CLUSTER_CLIENT_IP",
        "HTTP_X_ORIGINAL_URL",
        "HTTP_X_REWRITE_URL",
        "HTTP_X_ORIGINAL_URI",
        "HTTP_X_ORIGINAL_HOST",
        "HTTP_X_HOST",
        "HTTP_X_HTTP_METHOD_OVERRIDE",
        "HTTP_X_HTTP_METHOD",
        "HTTP_X_METHOD_OVERRIDE",
    }
)
# Every X-Forwarded-* header (For, Proto, Host, Port, Prefix, Server, Ssl …) is dropped too.
SPOOFABLE_PREFIXES = ("HTTP_X_FORWARDED_", "HTTP_PROXY_", "HTTP_X_ORIGINAL_")
RESPONSE_SKIP = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        # Recomputed or added by the gateway and its server.
        "content-length",
        "date",
        "server",
        "x-request-id",
    }
)
BODYLESS_STATUSES = frozenset({204, 304})
# Only the probes on the public port; `/metrics` and `/gateway/upstreams` are on the admin port.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# Longer targets are refused here (414), before an upstream server's own limit answers them
# in its own format.
MAX_TARGET_CHARS = 2048
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~\-]*")
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")
# Where `on_loop` leaves the route it matched, so the request is not matched twice.
_ROUTE_KEY = "breakwater.route"
_REASONS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class _Forward(NamedTuple):
    """The upstream call a request needs: the resilient client's arguments."""

    args: tuple[str, str, str]
    kwargs: dict[str, Any]


class Reply:
    """What the gateway answers: status, headers and the whole body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


# One request's steps: at most one upstream call yielded, the reply returned.
Steps = Generator["_Forward", UpstreamResponse, "Reply"]


def error_reply(error: ApiError) -> Reply:
    """The JSON error shape as a reply, with `Retry-After` and the error's own headers."""
    body = json.dumps(error.to_dict()).encode()
    headers = [("Content-Type", "application/json")]
    if error.retry_after is not None:
        headers.append(("Retry-After", str(error.retry_after)))
    headers.extend(getattr(error, "headers", {}).items())
    return Reply(error.status, headers, body)


def _with_retry_after(reply: Reply) -> Reply:
    """Every 503 tells the client when to come back, so refusals do not become a busy loop."""
    if reply.status == 503 and not any(k.lower() == "retry-after" for k, _ in reply.headers):
        reply.headers.append(("Retry-After", "1"))
    return reply


class GatewayProxy:
    """The gateway's WSGI application: proxy paths here, the probes to `admin`."""

    def __init__(
        self,
        settings: GatewaySettings,
        client: ResilientClient,
        *,
        edge_auth: EdgeAuth,
        login_limiter: LoginRateLimiter,
        stale_cache: StaleCache,
        metrics: GatewayMetrics,
        admin: WSGIApp,
        routes: tuple[Route, ...] = ROUTES,
        admission: Admission | None = None,
    ) -> None:
        self.settings, self.client, self.edge_auth = settings, client, edge_auth
        self.login_limiter, self.stale_cache, self.metrics, self.admin = (
            login_limiter,
            stale_cache,
            metrics,
            admin,
        )
        self.resilience = settings.resilience and client.resilience
        self.loop_reads = self.resilience and settings.loop_reads
        self.routes = routes
        self.admission = admission or Admission(routes)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path in PROBE_PATHS:
            return self.admin(environ, start_response)
        steps = self._steps(environ, path)
        reply = _first(steps)
        if isinstance(reply, _Forward):
            try:
                outcome: UpstreamResponse | BaseException = self.client.request(
                    *reply.args, **reply.kwargs)
            except BaseException as exc:  # noqa: BLE001 - the steps decide what it means
                outcome = exc
            reply = _last(steps, outcome)
        start_response(_REASONS.get(reply.status) or f"{reply.status} Unknown", reply.headers)
        return [reply.body]

    def on_loop(self, environ: dict[str, Any]) -> bool:
        """Whether `answer_async` may serve this request on the server's event loop: a read
        with no body of a public route, with resilience and `loop_reads` on. Nothing on its
        way may block (a token check may fetch auth's keys, the login limiter counts a
        write), and the naive gateway keeps the plain thread-pool shape the experiments
        compare against."""
        if not self.loop_reads or environ.get("REQUEST_METHOD") not in READ_METHODS:
            return False
        route = match_route(environ.get("PATH_INFO") or "/", self.routes)
        environ[_ROUTE_KEY] = route
        return route is not None and bool(route.upstream) and not route.protected

    async def answer_async(self, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
        """The whole answer to a request `on_loop` accepted, its upstream call made by the
        resilient client on the running event loop; the same steps as a WSGI call."""
        steps = self._steps(environ, environ.get("PATH_INFO") or "/")
        reply = _first(steps)
        if isinstance(reply, _Forward):
            try:
                outcome: UpstreamResponse | BaseException = await self.client.request_async(
                    *reply.args, **reply.kwargs)
            except BaseException as exc:  # noqa: BLE001 - the steps decide what it means
                outcome = exc
            reply = _last(steps, outcome)
        return reply.status, reply.headers, reply.body

    def _steps(self, environ: dict[str, Any], path: str) -> Steps:
        """One request, start to finish: it yields the upstream call to make (at most one),
        is sent the answer or thrown the error, and returns the reply, metrics counted."""
        route = environ.pop(_ROUTE_KEY) if _ROUTE_KEY in environ else match_route(path, self.routes)
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET").upper()
        rid = request_id(environ)
        admitted = None
        try:
            if route is not None and route.upstream and self.resilience:
                if not self.admission.try_enter(route.group):
                    self.metrics.admission_refused.labels(route.group).inc()
                    raise overloaded(route, environ)
                admitted = route.group
            reply = yield from self._answer(environ, route, path, method, rid)
        except ApiError as error:
            reply = error_reply(error)
        except Exception:  # noqa: BLE001 - never a stack trace to the client
            log.exception("gateway error", extra={"fields": {"request_id": rid, "path": path}})
            reply = error_reply(ApiError("the gateway hit an unexpected error; it has been logged"))
        finally:
            if admitted is not None:
                self.admission.leave(admitted)
        _with_retry_after(reply)
        reply.headers.append(("X-Request-Id", rid))
        if reply.status not in BODYLESS_STATUSES and (
            method != "HEAD" or not any(k.lower() == "content-length" for k, _ in reply.headers)
        ):
            reply.headers.append(("Content-Length", str(len(reply.body))))
        group = route.group if route else "unmatched"
        upstream = route.upstream if route and route.upstream else "none"
        self.metrics.observe(group, upstream, method, reply.status, time.perf_counter() - started)
        return reply

    def _answer(
        self, environ: dict[str, Any], route: Route | None, path: str, method: str, rid: str
    ) -> Generator[_Forward, UpstreamResponse, Reply]:
        settings = self.settings
        check_header_limits(environ, settings.max_header_bytes, settings.max_header_count)
        if len(path) + len(environ.get("QUERY_STRING") or "") > MAX_TARGET_CHARS:
            raise ApiError(f"the request path and query are longer than {MAX_TARGET_CHARS} "
                           "characters", code="uri_too_long", status=414,
                           details={"limit": MAX_TARGET_CHARS})
        if route is None or not route.upstream:
            raise NotFound(f"no route for {path}", details={"path": path})
        # The route's budget starts now (the edge's own work counts); a caller's may be shorter.
        budget = route.budget(method)
        own = Deadline.after(budget)
        caller = parse_budget(environ.get(DEADLINE_ENVIRON_KEY)) if self.resilience else None
        if caller is not None and caller.expired:
            raise spent(caller)
        if _DOT_SEGMENT.search(path):
            raise BadRequest("the path may not contain '.' or '..' segments", code="bad_path")
        if route.protected:
            self.edge_auth.verify(environ.get("HTTP_AUTHORIZATION"))
        if route.rate_limited and method == "POST":
            try:
                self.login_limiter.check(
                    client_ip(environ, settings.trust_forwarded, settings.trusted_hops))
            except ApiError:
                self.metrics.rate_limited.labels(route.group).inc()
                raise
        body = read_body(environ, settings.max_body_bytes)
        target = _quote_path(path)
        query = environ.get("QUERY_STRING")
        if query:
            target = f"{target}?{query}"
        headers = self._forward_headers(environ, rid)
        stale_ok = self.resilience and route.stale_fallback and method == "GET"
        # A read's attempt gets the read timeout, so its one retry fits in the budget; a write
        # gets the whole budget (it is sent twice only where the route declares it safe).
        attempt = self.settings.read_timeout if method in READ_METHODS else budget
        try:
            with deadline_scope(caller):
                response = yield _Forward((route.upstream, method, target), dict(
                    headers=headers,
                    body=body,
                    timeout=(self.settings.connect_timeout, attempt),
                    deadline=own.remaining(),
                    idempotent=route.may_repeat(method, bool(environ.get("HTTP_IDEMPOTENCY_KEY"))),
                    raise_for_status=False,
                ))
        except UpstreamError as error:
            # Fast refusals come by the thousand during an outage: keep them out of the log.
            quiet = error.reason in ("breaker_open", "bulkhead_full")
            log.log(
                logging.DEBUG if quiet else logging.WARNING,
                "%s %s: %s",
                method,
                path,
                error.code,
                extra={
                    "fields": {"request_id": rid, "reason": error.reason, "replica": error.instance}
                },
            )
            stale = self._stale(route, target) if stale_ok else None
            if stale is None:
                raise
            return stale
        if stale_ok and response.status >= 500:
            stale = self._stale(route, target)
            if stale is not None:
                return stale
        reply_headers = _response_headers(response.headers, keep_length=method == "HEAD")
        if stale_ok and response.status == 200 and not _no_store(response.headers):
            self.stale_cache.store(target, reply_headers, response.data)
        return Reply(response.status, reply_headers, response.data)

    def _forward_headers(self, environ: Mapping[str, Any], rid: str) -> dict[str, str]:
        # Lower-case names, so the client's trace propagation replaces `traceparent` instead of
        # sending a second one beside it.
        headers: dict[str, str] = {}
        connection_tokens = environ.get("HTTP_CONNECTION")
        named = (
            {f"HTTP_{t.strip().upper().replace('-', '_')}" for t in connection_tokens.split(",")}
            if connection_tokens
            else ()
        )
        for key, value in environ.items():
            name = _forward_name(key)
            if name and key not in named:
                headers[name] = value
        content_type = environ.get("CONTENT_TYPE")
        if content_type:
            headers["content-type"] = content_type
        # One address: the client as the gateway determined it (behind trusted proxies,
        # counted from the right), so a service trusting the gateway as its one hop reads it.
        settings = self.settings
        headers["x-forwarded-for"] = client_ip(environ, settings.trust_forwarded,
                                               settings.trusted_hops)
        proto = environ.get("HTTP_X_FORWARDED_PROTO", "") if settings.trust_forwarded else ""
        proto = proto.rsplit(",", 1)[-1].strip().lower()
        headers["x-forwarded-proto"] = (
            proto if proto in ("http", "https") else environ.get("wsgi.url_scheme", "http"))
        if environ.get("HTTP_HOST"):
            headers["x-forwarded-host"] = environ["HTTP_HOST"]
        headers["x-request-id"] = rid
        return headers

    def _stale(self, route: Route, key: str) -> Reply | None:
        found = self.stale_cache.lookup(key)
        if found is None:
            return None
        entry, age = found
        self.metrics.fallbacks.labels(route.group, route.upstream).inc()
        mark_fallback("stale_cache", age_seconds=age)
        headers = [*entry.headers, *STALE_HEADERS, ("Age", str(age))]
        return Reply(200, headers, entry.body)


@functools.lru_cache(maxsize=4096)  # the same few keys on every request; clients choose them
def _forward_name(key: str) -> str:
    """The header name an environ key is forwarded as, "" when it is not forwarded: not a
    header, hop-by-hop, or one the gateway sets itself."""
    if (key.startswith("HTTP_") and key not in REQUEST_SKIP
            and not key.startswith(SPOOFABLE_PREFIXES)):
        return key[5:].replace("_", "-").lower()
    return ""


def _first(steps: Steps) -> _Forward | Reply:
    """The upstream call a request's steps ask for, or their reply when they need none."""
    try:
        return next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _last(steps: Steps, outcome: UpstreamResponse | BaseException) -> Reply:
    """The steps' reply, once sent the upstream call's answer or thrown its error."""
    try:
        if isinstance(outcome, BaseException):
            steps.throw(outcome)
        else:
            steps.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("the gateway's steps asked for a second upstream call")


def read_body(environ: Mapping[str, Any], limit: int) -> bytes | None:
    """The whole request body (None when there is none); 413 past `limit` bytes."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        if not (length.isascii() and length.strip().isdigit()):
            # int("-1") would read to the end of the stream, past the limit.
            raise BadRequest(f"Content-Length {length[:32]!r} is not a number of bytes",
                             code="bad_content_length")
        size = int(length)
        if size > limit:
            raise _too_large(limit)
        body = stream.read(size) if size else b""
        if len(body) < size:
            # The client left before its body was whole: never forward half a request.
            raise BadRequest(f"the request body ended after {len(body)} of {size} bytes",
                             code="incomplete_body")
        return body
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(65536, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)


def _too_large(limit: int) -> ApiError:
    error = ApiError(
        f"the request body is larger than the gateway accepts ({limit} bytes)",
        code="payload_too_large",
        status=413,
        details={"limit_bytes": limit},
    )
    # The unread body is still on the connection: ask the server to close it.
    error.headers = {**getattr(error, "headers", {}), "Connection": "close"}
    return error


def _quote_path(path: str) -> str:
    if _PLAIN_PATH.fullmatch(path):
        return path
    return quote(path.encode("latin-1"), safe="/!$&'()*+,;=:@-._~")


def _response_headers(answered: Mapping[str, str], *, keep_length: bool) -> Headers:
    headers: Headers = []
    items = getattr(answered, "received", None) or answered.items()  # AnswerHeaders: as sent
    for key, value in items:
        lower = key.lower()
        if lower in RESPONSE_SKIP and not (keep_length and lower == "content-length"):
            continue
        if lower == "content-encoding" and value.strip().lower() in DECODED_ENCODINGS:
            continue
        if lower in ("location", "content-location"):
            value = relative_location(value)
        headers.append((key, value))
    return headers



def _no_store(headers: Mapping[str, str]) -> bool:
    return "no-store" in (headers.get("Cache-Control") or "").lower()
