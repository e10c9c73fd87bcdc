"""The gateway's front under Granian: requests are read in full before they take a thread,
and public reads take none.

Granian parses HTTP in native code and holds every connection on its own event loop, with a
deadline on the headers (a client sending a header line a second costs no Python thread). This
RSGI front then reads the body under its own deadline and size limit, counts requests in
progress per client address, and only then hands the complete request to the WSGI gateway on
a bounded thread pool. A slow client therefore waits on the loop, never in a worker thread.

A bodiless read of a public route (the catalog) takes no thread at all: the gateway answers it
on the loop (`GatewayProxy.on_loop`, `answer_async`), with the same steps as the WSGI call and
the resilient client's event-loop exchange (`ResilientClient.request_async`), traced as the
WSGI path is. Anything that may block (a token check may fetch auth's keys) or carries a body,
and every request of a naive gateway (`resilience` off), goes to the threads.

Run by `python -m gateway` (gateway/__main__.py); `create_front()` is the Granian factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway.config import GatewaySettings
from gateway.edge import forwarded_client
from observability.server_spans import ServerSpans, WholeAnswer
from services.common.errors import ApiError

log = logging.getLogger("breakwater.gateway.front")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Headers joined with "; " when a client sends them twice (RFC 9110 §5.3; cookies: RFC 6265).
_JOIN_SEMICOLON = frozenset({"cookie"})


class ClientSlots:
    """Requests in progress per client address, at most `limit` each (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def try_enter(self, client: str) -> bool:
        """Take one slot of `client` if it has one left; never blocks."""
        with self._lock:
            count = self._counts.get(client, 0)
            if count >= self.limit:
                return False
            self._counts[client] = count + 1
            return True

    def leave(self, client: str) -> None:
        """Give back one slot of `client`."""
        with self._lock:
            count = self._counts.get(client, 0) - 1
            if count > 0:
                self._counts[client] = count
            else:
                self._counts.pop(client, None)

    def in_use(self, client: str) -> int:
        """Slots `client` holds now."""
        with self._lock:
            return self._counts.get(client, 0)


def peer_address(client: str) -> str:
    """The host part of Granian's `host:port` (IPv6 as `[addr]:port`)."""
    host, _, _port = client.rpartition(":")
    return (host or client).strip("[]")


def error_body(error: ApiError) -> tuple[int, list[tuple[str, str]], bytes]:
    """An ApiError as (status, headers, JSON body), closing the connection."""
    headers = [("content-type", "application/json"), ("connection", "close")]
    if error.retry_after is not None:
        headers.append(("retry-after", str(error.retry_after)))
    return error.status, headers, json.dumps(error.to_dict()).encode()


class GatewayFront:
    """An RSGI application: buffer, limit per client, then run `app` on `threads` threads."""

    def __init__(self, app: WSGIApp, settings: GatewaySettings,
                 on_start: Callable[[], None] | None = None,
                 on_stop: Callable[[], None] | None = None) -> None:
        self.app, self.settings = app, settings
        self.slots = ClientSlots(settings.max_requests_per_client)
        self._pool: ThreadPoolExecutor | None = None
        self._on_start, self._on_stop = on_start, on_stop
        self._server_port = str(settings.port)
        # The gateway's own test (reached through its spans); other apps answer on threads.
        self._on_loop = getattr(app, "on_loop", None) or _never

    # Granian's RSGI hooks ---------------------------------------------------------------
    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.settings.threads),
                                        thread_name_prefix="gateway-worker")
        if self._on_start is not None:
            self._on_start()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._on_stop is not None:
            self._on_stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        headers = scope.headers.items()
        peer = peer_address(scope.client)
        client = forwarded_client(peer, _header(headers, "x-forwarded-for"),
                                  self.settings.trusted_hops if self.settings.trust_forwarded else 0)
        if not self.slots.try_enter(client):
            _send(protocol, error_body(ApiError(
                f"this address has {self.settings.max_requests_per_client} requests in progress "
                "already; wait for them to finish before sending more",
                code="too_many_requests_in_progress", status=429, retry_after=1,
                details={"limit": self.settings.max_requests_per_client})))
            return
        try:
            body = await self._read_body(headers, protocol)
            if isinstance(body, ApiError):
                _send(protocol, error_body(body))
                return
            environ = self._environ(scope, headers, peer, body)
            if not body and self._on_loop(environ):
                status, reply_headers, payload = await self._answer_on_loop(environ)
                reply_headers = _without_framing(reply_headers)
            else:
                loop = asyncio.get_running_loop()
                if self._pool is None:  # served without Granian's init hook (tests)
                    self.__rsgi_init__(loop)
                status, reply_headers, payload = await loop.run_in_executor(
                    self._pool, run_wsgi, self.app, environ)
            _send(protocol, (status, reply_headers, payload))
        finally:
            self.slots.leave(client)

    # Reads answered on the loop ------------------------------------------------------
    def _answer_on_loop(self, environ: dict[str, Any]) -> Awaitable[WholeAnswer]:
        """A bodiless public read, proxied without a thread: its upstream exchange is the
        resilient client's on this loop, and it is traced as the WSGI path is."""
        app = self.app
        if isinstance(app, ServerSpans):
            proxy = app.app
            return app.whole_answer(environ, lambda: proxy.answer_async(environ))
        return app.answer_async(environ)  # type: ignore[attr-defined,no-any-return]

    # The request, read in full --------------------------------------------------------
    async def _read_body(self, headers: list[tuple[str, str]], protocol: Any) -> bytes | ApiError:
        limit = self.settings.max_body_bytes
        declared = _header(headers, "content-length")
        expected = None
        if declared is not None:
            # Granian already refuses a malformed or negative length; this is the size limit.
            expected = int(declared) if declared.strip().isdigit() else None
            if expected is not None and expected > limit:
                return _too_large(limit)
        elif "chunked" not in (_header(headers, "transfer-encoding") or "").lower():
            return b""
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(self.settings.body_timeout_seconds):
                async for chunk in protocol:
                    total += len(chunk)
                    if total > limit:
                        return _too_large(limit)
                    chunks.append(chunk)
        except TimeoutError:
            return ApiError(
                f"the request body did not arrive within {self.settings.body_timeout_seconds:g} "
                "seconds; send it at once",
                code="body_timeout", status=408)
        except Exception as exc:  # noqa: BLE001 - the client went away mid-body
            return ApiError(f"the request body could not be read ({type(exc).__name__})",
                            code="bad_request", status=400)
        if expected is not None and total < expected:
            # The client left before its body was whole: never forward half a request.
            return ApiError(f"the request body ended after {total} of {expected} bytes",
                            code="incomplete_body", status=400)
        return b"".join(chunks)

    def _environ(self, scope: Any, headers: list[tuple[str, str]], peer: str,
                 body: bytes) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            # WSGI's PATH_INFO is the decoded path as latin-1 text (PEP 3333).
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": self.settings.host,
            "SERVER_PORT": self._server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": peer,
            "REMOTE_PORT": scope.client.rpartition(":")[2],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.settings.workers > 1,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)) if body else "",
        }
        for name, value in headers:
            key = _environ_key(name)
            if not key:
                continue  # the body is whole now: its length is CONTENT_LENGTH
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
                continue
            if key in environ:
                environ[key] += ("; " if name in _JOIN_SEMICOLON else ", ") + value
            else:
                environ[key] = value
        return environ


@functools.lru_cache(maxsize=4096)  # the same few names on every request; clients choose them
def _environ_key(name: str) -> str:
    """A header's WSGI environ key ("" for the body's framing, which the front has read
    already)."""
    if name in ("content-length", "transfer-encoding"):
        return ""
    if name == "content-type":
        return "CONTENT_TYPE"
    return "HTTP_" + name.upper().replace("-", "_")


def run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Call a WSGI app on a worker thread; its whole answer as (status, headers, body)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        payload = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return int(status.split(" ", 1)[0]), _without_framing(headers), payload


def _never(environ: dict[str, Any]) -> bool:
    return False


def _without_framing(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The app's headers less the framing Granian sets itself."""
    return [(k, v) for k, v in headers if k.lower() not in ("content-length", "connection")]


def _send(protocol: Any, reply: tuple[int, list[tuple[str, str]], bytes]) -> None:
    status, headers, body = reply
    # Granian's "protocol closed" is a RuntimeError: the client left, nobody to answer.
    with contextlib.suppress(RuntimeError):
        if status in (204, 304):
            protocol.response_empty(status, headers)
        else:
            protocol.response_bytes(status, headers, body)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _too_large(limit: int) -> ApiError:
    return ApiError(f"the request body is larger than the gateway accepts ({limit} bytes)",
                    code="payload_too_large", status=413, details={"limit_bytes": limit})


def create_front() -> GatewayFront:
    """Granian's factory (`gateway.front:create_front`): the gateway and its admin port."""
    from gateway.app import create_app
    from gateway.server import AdminServer
    from observability.tracing import shutdown_tracing

    app = create_app()
    settings: GatewaySettings = app.settings
    admin = AdminServer(app.admin, settings.admin_host, settings.admin_port)

    def stop() -> None:
        admin.stop()
        app.client.close()
        shutdown_tracing()  # export what this worker still holds (gunicorn's worker_exit)

    return GatewayFront(app, settings, on_start=admin.start, on_stop=stop)
