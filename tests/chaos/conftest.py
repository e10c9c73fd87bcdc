"""Fixtures for the fault proxy tests: an embedded server, echo upstreams, loopback clients."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from chaos.toxiproxy import ServerThread, run_in_thread
from tests.chaos.wire import RecordingServer


class EchoServer:
    """A threaded TCP server on 127.0.0.1 that echoes, or closes after a greeting."""

    def __init__(self, greeting: bytes | None = None) -> None:
        self.greeting = greeting  # when set: send it, then close (a server that hangs up)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        self.peer_closed = threading.Event()  # some client connection reached EOF
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while self._running:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.greeting is not None:
                conn.sendall(self.greeting)
                conn.close()
                return
            while data := conn.recv(65536):
                conn.sendall(data)
            self.peer_closed.set()
        except OSError:
            self.peer_closed.set()
        finally:
            conn.close()

    def stop(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()
        with self._lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        self._thread.join(5)


class Api:
    """requests against the embedded server, relative paths, no exceptions on error codes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def __getattr__(self, method: str) -> Callable[..., requests.Response]:
        def call(path: str, **kwargs) -> requests.Response:
            kwargs.setdefault("timeout", 5)
            return self.session.request(method.upper(), self.url + path, **kwargs)

        return call


def wait_until(condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.01):
    """Poll `condition` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """An embedded fault proxy server on a free port, seeded for repeatable draws."""
    handle = run_in_thread("127.0.0.1", 0, rng=random.Random(1234))
    yield handle
    handle.stop()


@pytest.fixture
def api(server: ServerThread) -> Api:
    return Api(server.url)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    upstream = EchoServer()
    yield upstream
    upstream.stop()


@pytest.fixture
def hangup() -> Iterator[EchoServer]:
    """An upstream that greets with b"bye" and closes at once."""
    upstream = EchoServer(greeting=b"bye")
    yield upstream
    upstream.stop()


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    """An upstream that records what each connection sends and when it ends."""
    upstream = RecordingServer()
    yield upstream
    upstream.stop()


@pytest.fixture
def proxy(api: Api, echo: EchoServer) -> dict:
    """A proxy `echo` in front of the echo server; its JSON, listen address bound."""
    response = api.post("/proxies", json={"name": "echo", "listen": "127.0.0.1:0",
                                          "upstream": echo.address})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def connect() -> Iterator[Callable[..., socket.socket]]:
    """Open client sockets to `host:port` strings; all closed at teardown."""
    sockets: list[socket.socket] = []

    def open_socket(address: str, timeout: float = 5.0) -> socket.socket:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        sockets.append(sock)
        return sock

    yield open_socket
    for sock in sockets:
        sock.close()


@pytest.fixture
def wait() -> Callable[..., object]:
    return wait_until


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes (fails on EOF)."""
    parts, got = [], 0
    while got < size:
        data = sock.recv(size - got)
        if not data:
            raise AssertionError(f"EOF after {got} of {size} bytes")
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything until EOF."""
    parts = []
    while data := sock.recv(65536):
        parts.append(data)
    return b"".join(parts)


@pytest.fixture
def io() -> object:
    """Socket helpers as a namespace: `io.recv_exactly`, `io.read_until_closed`, `io.rtt`."""

    class IO:
        recv_exactly = staticmethod(recv_exactly)
        read_until_closed = staticmethod(read_until_closed)

        @staticmethod
        def is_closed(sock: socket.socket) -> bool:
            """The proxy closed the connection: EOF, or a reset (unread data was pending)."""
            sock.settimeout(3)
            try:
                return sock.recv(10) == b""
            except ConnectionResetError:
                return True

        @staticmethod
        def rtt(sock: socket.socket, payload: bytes = b"ping") -> float:
            start = time.perf_counter()
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload
            return time.perf_counter() - start

    return IO
