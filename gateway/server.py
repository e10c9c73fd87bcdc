"""A development server with a bounded worker pool, like gunicorn's gthread worker.

Werkzeug's threaded server starts a thread per connection without limit, which hides what a
slow upstream does to a real server's pool; this one runs requests on `threads` workers and
queues the rest, so resilience experiments behave as in production.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class PooledWSGIServer(BaseWSGIServer):
    """Werkzeug's server with requests handled on a fixed-size thread pool."""

    def __init__(self, host: str, port: int, app: Any, threads: int,
                 handler: type[WSGIRequestHandler] | None = None) -> None:
        super().__init__(host, port, app, handler)
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gateway-worker")

    def process_request(self, request: Any, client_address: Any) -> None:  # noqa: D102
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - socketserver's own convention
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:  # noqa: D102
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def build_server(app: Any, host: str, port: int, threads: int) -> BaseWSGIServer:
    """A server for `app`: a pool of `threads` workers, or a thread per connection if 0."""
    if threads > 0:
        return PooledWSGIServer(host, port, app, threads)
    return make_server(host, port, app, threaded=True)


def bound_port(server: BaseWSGIServer) -> int:
    """The port a server listens on (useful when asked for port 0)."""
    sock: socket.socket = server.socket
    return int(sock.getsockname()[1])


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: the console and Prometheus poll the admin port."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # noqa: D102
        pass


class _ReusePortServer(PooledWSGIServer):
    """The admin server; several Granian workers may bind the same admin port."""

    def server_bind(self) -> None:  # noqa: D102
        if hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class AdminServer:
    """The gateway's admin port (`/gateway/upstreams`, `/metrics`, probes) on its own thread.

    It binds 127.0.0.1 by default (`GATEWAY_ADMIN_HOST`), so what the views tell (internal
    addresses, breaker states, key ids) never reaches the public port.
    """

    def __init__(self, app: Any, host: str, port: int, threads: int = 4) -> None:
        self.app, self.host, self.port, self.threads = app, host, port, threads
        self.server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the admin views answer."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> AdminServer:
        """Bind and serve on a daemon thread."""
        self.server = _ReusePortServer(self.host, self.port, self.app, self.threads,
                                       _QuietHandler)
        self.port = bound_port(self.server)
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="gateway-admin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
