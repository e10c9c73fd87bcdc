"""A scriptable fake upstream HTTP server on a free loopback port, run in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server


class FakeUpstream:
    """Answers every path according to `mode` (ok, error, slow, dependency_error); counts hits."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.mode = "ok"
        self.delay = 0.0
        self.hits: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.release = threading.Event()  # set to let hanging requests finish
        app = Flask(name)
        app.add_url_rule("/", "any", self._answer, methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                         defaults={"path": ""})
        app.add_url_rule("/<path:path>", "any", self._answer, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, path: str) -> Response | tuple[Response, int]:
        with self._lock:
            self.hits.append((request.method, "/" + path))
        if self.mode == "slow":
            self.release.wait(self.delay)
        if self.mode == "error":
            return jsonify(error={"code": "boom"}), 500
        if self.mode == "dependency_error":
            response = jsonify(error={"code": "cart_unavailable"})
            response.headers["X-Breakwater-Failed-Dependency"] = "cart"
            return response, 503
        return jsonify(upstream=self.name, path="/" + path, method=request.method,
                       headers=dict(request.headers))

    def hit_count(self) -> int:
        with self._lock:
            return len(self.hits)

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_upstreams(count: int = 1) -> Iterator[list[FakeUpstream]]:
    """`count` running fake upstreams, stopped afterwards."""
    servers = [FakeUpstream(f"fake-{i}").start() for i in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def timed(call: Callable[[], object]) -> tuple[object, float]:
    """Run `call`, returning its result (or exception) and the seconds it took."""
    started = time.perf_counter()
    try:
        result: object = call()
    except Exception as exc:  # noqa: BLE001 - the caller asserts on it
        result = exc
    return result, time.perf_counter() - started
