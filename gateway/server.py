"""A development server with a bounded worker pool, like gunicorn's gthread worker.

Werkzeug's threaded server starts a thread per connection without limit, which hides what a
slow upstream does to a real server's pool; this one runs requests on `threads` workers and
queues the rest, so resilience experiments behave as in production.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


class PooledWSGIServer(BaseWSGIServer):
    """Werkzeug's server with requests handled on a fixed-size thread pool."""

    def __init__(self, host: str, port: int, app: Any, threads: int) -> None:
        super().__init__(host, port, app)
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
