"""A scripted upstream on a free loopback port: the path says how to answer (httpbin style).

Paths: `/status/<code>`, `/dependency/<code>` (a 5xx naming a failed dependency), `/hold/<key>`
(answer once `release(key)` is called), `/sleep/<seconds>`, `/drip/<bytes>/<interval>` (the body
one byte at a time), `/drop` (read the request, close without answering); anything else echoes
the request as JSON. A `script` query parameter (`/api/v1/products?script=drip/15/0.2`) takes
the place of the path, for requests whose path is fixed by a route. Server-wide switches: `hang()` holds every request until `heal()`,
`fail()` answers 500 to everything, `drop_reused = True` reads and drops any request that
arrives on a connection already used once (a keep-alive connection gone stale).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

HOLD_LIMIT = 15.0


@dataclass(frozen=True)
class Received:
    """A request the upstream read in full."""

    method: str
    path: str
    headers: dict[str, str]
    connection_use: int  # 1 for the first request on its connection


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.uses = 0

    def log_message(self, *_args: object) -> None:  # quiet
        pass

    def _serve(self) -> None:
        self.uses += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        upstream = self.server.upstream
        upstream.record(Received(self.command, self.path, dict(self.headers.items()), self.uses))
        path, _, query = self.path.partition("?")
        # `?script=drip/15/0.2` scripts a request whose path belongs to somebody else's API.
        script = parse_qs(query).get("script", [path])[0]
        parts = script.strip("/").split("/")
        if (upstream.drop_reused and self.uses > 1) or parts[0] == "drop":
            self.close_connection = True
            return
        if upstream.mode == "hang":
            upstream.healed.wait(HOLD_LIMIT)
        if upstream.mode == "fail":
            return self._json(500, {"error": {"code": "boom"}})
        if parts[0] == "status":
            return self._json(int(parts[1]), {"status": int(parts[1])})
        if parts[0] == "dependency":
            return self._json(int(parts[1]), {"error": {"code": "cart_unavailable"}},
                              [("X-Breakwater-Failed-Dependency", "cart")])
        if parts[0] == "hold":
            upstream.event(parts[1]).wait(HOLD_LIMIT)
        elif parts[0] == "sleep":
            upstream.stopping.wait(float(parts[1]))
        elif parts[0] == "drip":
            return self._drip(int(parts[1]), float(parts[2]))
        self._json(200, {"instance": upstream.name, "method": self.command, "path": self.path,
                         "headers": dict(self.headers.items()), "body": body.decode("utf-8", "replace")})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def _json(self, status: int, document: object, headers: list[tuple[str, str]] = ()) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drip(self, size: int, interval: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        try:
            for _ in range(size):
                if self.server.upstream.stopping.wait(interval):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            self.close_connection = True  # the caller gave up: what it should do


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: ScriptedUpstream


class ScriptedUpstream:
    """A real HTTP/1.1 keep-alive server in a thread; see the module docstring."""

    def __init__(self, name: str = "upstream") -> None:
        self.name = name
        self.mode = "ok"
        self.drop_reused = False
        self.received: list[Received] = []
        self.healed = threading.Event()
        self.stopping = threading.Event()
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def count(self, path_prefix: str = "/") -> int:
        """How many requests under `path_prefix` were read in full."""
        with self._lock:
            return sum(1 for r in self.received if r.path.startswith(path_prefix))

    def event(self, key: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(key, threading.Event())

    def release(self, key: str) -> None:
        """Let every `/hold/<key>` request answer."""
        self.event(key).set()

    def hang(self) -> None:
        """Hold every request until `heal()`."""
        self.healed.clear()
        self.mode = "hang"

    def fail(self) -> None:
        """Answer 500 to every request."""
        self.mode = "fail"

    def heal(self) -> None:
        """Answer normally again, and let held requests go."""
        self.mode = "ok"
        self.healed.set()

    def stop(self) -> None:
        """Release everything held and close the port (it then refuses connections)."""
        self.stopping.set()
        self.healed.set()
        with self._lock:
            for event in self._events.values():
                event.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def scripted_upstreams(count: int = 1) -> Iterator[list[ScriptedUpstream]]:
    """`count` running scripted upstreams, stopped afterwards."""
    servers = [ScriptedUpstream(f"upstream-{i}") for i in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def elapsed(call) -> tuple[object, float]:
    """`call()`'s result or exception, and the seconds it took."""
    started = time.perf_counter()
    try:
        result: object = call()
    except Exception as exc:  # noqa: BLE001 - the caller asserts on it
        result = exc
    return result, time.perf_counter() - started
