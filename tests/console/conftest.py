"""Fixtures of the console tests: the embedded fault proxy with a small shop of listeners, a
stand-in for the real Toxiproxy (no event log), and small HTTP servers in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.chaos.conftest import Api, EchoServer, api, echo, server  # noqa: F401 - fixtures


class ThreadedApp:
    """A WSGI app served on a free loopback port in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], ThreadedApp]]:
    """`serve(app)` → the app on a free port; stopped at teardown."""
    running: list[ThreadedApp] = []

    def start(app: Any) -> ThreadedApp:
        running.append(ThreadedApp(app))
        return running[-1]

    yield start
    for item in running:
        item.stop()


@pytest.fixture
def shop(api: Api, echo: EchoServer) -> Api:  # noqa: F811 - fixtures by name
    """Listeners named like a local stack's: cart, product-1, product-2."""
    for name in ("cart", "product-1", "product-2"):
        response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                              "upstream": echo.address})
        assert response.status_code == 201
    return api


@pytest.fixture
def plain_toxiproxy(serve: Callable[[Any], ThreadedApp]) -> ThreadedApp:
    """Answers like the real Toxiproxy 2.12: proxies, but `404 page not found` for /events."""
    app = Flask("plain-toxiproxy")
    proxies = {"cart": {"name": "cart", "listen": "[::]:21003", "upstream": "cart:5003",
                        "enabled": False, "toxics": []}}
    app.add_url_rule("/proxies", "proxies", lambda: proxies)

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int, dict[str, str]]:
        return "404 page not found\n", 404, {"Content-Type": "text/plain; charset=utf-8"}

    return serve(app)
