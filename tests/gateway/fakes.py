"""Fake upstream services on loopback ports, and the gateway itself run as a real server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from werkzeug.serving import make_server

from gateway.app import create_app
from gateway.front import GatewayFront
from gateway.proxy import GatewayProxy
from gateway.server import AdminServer, PooledWSGIServer, bound_port
from tests.support.processes import free_port, wait_until


@dataclass
class SeenRequest:
    """One request a fake upstream received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Behaviour:
    """How a fake upstream answers: echo, a fixed status, or hang until released."""

    status: int = 200
    hang: bool = False
    body: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class FakeUpstream:
    """A tiny threaded WSGI server that records requests and answers as told."""

    def __init__(self, name: str, *, hang_limit: float = 15.0) -> None:
        self.name, self.hang_limit = name, hang_limit
        self.behaviour = Behaviour()
        self.seen: list[SeenRequest] = []
        self.in_flight = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.port = bound_port(self.server)
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.running = True

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        seen = SeenRequest(
            environ["REQUEST_METHOD"],
            environ["PATH_INFO"],
            environ.get("QUERY_STRING", ""),
            headers,
            body,
        )
        behaviour = self.behaviour
        with self._lock:
            self.seen.append(seen)
            self.in_flight += 1
        try:
            if behaviour.hang:
                self.release.wait(self.hang_limit)
            payload = behaviour.body
            if payload is None:
                payload = json.dumps(
                    {
                        "instance": self.name,
                        "method": seen.method,
                        "path": seen.path,
                        "query": seen.query,
                        "headers": seen.headers,
                        "body": body.decode("utf-8", "replace"),
                    }
                ).encode()
            start_response(
                f"{behaviour.status} X",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload))),
                    *behaviour.headers,
                ],
            )
            return [payload]
        finally:
            with self._lock:
                self.in_flight -= 1

    def answer(
        self,
        status: int = 200,
        *,
        hang: bool = False,
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Change how the next requests are answered."""
        self.release.clear() if hang else self.release.set()
        self.behaviour = Behaviour(status=status, hang=hang, body=body, headers=headers or [])

    def count(self, path_prefix: str = "/") -> int:
        """How many requests under `path_prefix` this upstream has seen."""
        return sum(1 for s in list(self.seen) if s.path.startswith(path_prefix))

    def stop(self) -> None:
        """Release hung requests and close the listening socket (the port then refuses)."""
        if self.running:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.running = False


class RunningGateway:
    """The gateway run as a real server in this process, with its admin port.

    `front=True` (the default) serves it as `python -m gateway` does: its RSGI front on Granian
    (embedded, on an event loop of its own), public reads answered on that loop and everything
    else on the front's `threads` worker threads. `front=False` serves the WSGI app alone on a
    plain pool of `threads` threads that read bodies themselves (what a WSGI server such as
    gunicorn would do), for what the app must guard against without the front."""

    def __init__(self, config: dict[str, Any], threads: int = 32, front: bool = True) -> None:
        self.app: GatewayProxy = create_app(config)
        self.front: GatewayFront | None = None
        self.server: PooledWSGIServer | None = None
        if front:
            port = free_port()
            self.front = GatewayFront(self.app, replace(self.app.settings, threads=threads,
                                                        port=port))
            self._serve_front(self.front, port)
            self.url = f"http://127.0.0.1:{port}"
        else:
            self.server = PooledWSGIServer("127.0.0.1", 0, self.app, threads)
            self.url = f"http://127.0.0.1:{bound_port(self.server)}"
            self._thread = threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        self.admin = AdminServer(self.app.admin, "127.0.0.1", 0).start()
        self.admin_url = self.admin.url
        wait_until(
            lambda: requests.get(self.url + "/healthz", timeout=1).ok,
            timeout=10,
            message="gateway healthy",
        )

    def _serve_front(self, front: GatewayFront, port: int) -> None:
        from granian.constants import Interfaces
        from granian.log import LogLevels
        from granian.server.embed import Server

        self._loop = asyncio.new_event_loop()
        self._granian = Server(front, address="127.0.0.1", port=port, interface=Interfaces.RSGI,
                               log_level=LogLevels.warning)

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._granian.serve())

        self._thread = threading.Thread(target=serve, name="granian-embedded", daemon=True)
        self._thread.start()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.post(self.url + path, **kwargs)

    def admin_get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET on the admin port (`/gateway/upstreams`, `/metrics`)."""
        kwargs.setdefault("timeout", 10)
        return requests.get(self.admin_url + path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.url + path, **kwargs)

    def stop(self) -> None:
        self.admin.stop()
        if self.front is not None:
            self._loop.call_soon_threadsafe(self._granian.stop)
            self._thread.join(10)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.app.client.close()


def timed(call: Any) -> tuple[Any, float]:
    """The result of `call()` and how long it took, in seconds."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started
