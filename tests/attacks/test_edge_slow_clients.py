"""Slow clients cannot starve the gateway: a few hundred connections dribbling headers or
bodies (bounded in count and time, loopback only) leave product reads served, and one address
cannot hold more than its share of requests in progress."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.attacks.edge_stack import EdgeStack, start_edge_stack, start_gateway
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
SLOWLORIS_CONNECTIONS = 300
SLOW_BODIES = 100
# Far fewer threads than attackers: a design that gives each connection a thread starves.
THREADS = 16


class SlowClients:
    """`count` connections that send `head`, then one `drip` every `every` seconds, never
    finishing; stopped (every socket closed) by `stop()` or after `max_seconds`."""

    def __init__(self, url: str, count: int, head: bytes, drip: bytes, *, every: float = 0.5,
                 max_seconds: float = 30.0) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port, self.count, self.head, self.drip = int(port), count, head, drip
        self.every, self.max_seconds = every, max_seconds
        self.sockets: list[socket.socket] = []
        self.dripped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        for _ in range(self.count):
            sock = socket.create_connection((self.host, self.port), timeout=5)
            sock.settimeout(None)  # blocking: MSG_DONTWAIT alone decides in open_count()
            sock.sendall(self.head)
            self.sockets.append(sock)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def open_count(self) -> int:
        """Connections the server still holds open without having answered them."""
        held = 0
        for sock in self.sockets:
            try:
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                held += 1  # nothing to read: neither an answer nor a close
            except OSError:
                pass
        return held

    def _run(self) -> None:
        ends = time.monotonic() + self.max_seconds
        while not self._stop.wait(self.every) and time.monotonic() < ends:
            for sock in self.sockets:
                if sock.fileno() == -1:
                    continue
                try:
                    sock.sendall(self.drip)
                    self.dripped += 1
                except OSError:
                    sock.close()

    def stop(self) -> None:
        """Stop dripping and close every connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture(scope="module")
def env(key_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("slow")
    return {
        "BREAKWATER_TOKEN_PUBLIC_KEY_FILE": str(key_files[1]),
        "AUTH_TOKEN_PRIVATE_KEY_FILE": str(key_files[0]),
        "BREAKWATER_VAR_DIR": str(folder / "var"),
        "OTEL_TRACES_EXPORTER": "none",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


@pytest.fixture(scope="module")
def stack(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStack]:
    running = start_edge_stack(env, tmp_path_factory.mktemp("slow-stack"), threads=str(THREADS),
                               body_timeout_seconds="4", header_timeout_seconds="30",
                               max_requests_per_client="400")
    yield running
    running.stop()


def product_reads(url: str, count: int) -> list[int]:
    """`count` catalog reads through the gateway, each on a new connection; their statuses."""
    statuses = []
    for _ in range(count):
        try:
            statuses.append(requests.get(f"{url}/api/v1/products", timeout=5).status_code)
        except requests.RequestException:
            statuses.append(0)
    return statuses


def test_header_slowloris_leaves_product_reads_served(stack):
    head = b"GET /api/v1/products HTTP/1.1\r\nHost: shop\r\n"
    with SlowClients(stack.gateway.url, SLOWLORIS_CONNECTIONS, head, b"X-Slow: 1\r\n") as slow:
        wait_until(lambda: slow.dripped >= 2 * SLOWLORIS_CONNECTIONS, timeout=10,
                   message="every slow connection has dripped twice")
        statuses = product_reads(stack.gateway.url, 30)
        still_open = slow.open_count()
    assert still_open == SLOWLORIS_CONNECTIONS, "the attack connections were closed early"
    assert statuses == [200] * 30


def test_slow_bodies_wait_outside_the_worker_threads_and_then_get_408(stack):
    head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json"
            b"\r\nContent-Length: 1000\r\n\r\n{")
    with SlowClients(stack.gateway.url, SLOW_BODIES, head, b" ") as slow:
        wait_until(lambda: slow.dripped >= 2 * SLOW_BODIES, timeout=10,
                   message="every slow body has dripped twice")
        statuses = product_reads(stack.gateway.url, 30)
        # The body deadline (4 s here) answers the slow senders themselves.
        sock = slow.sockets[0]
        sock.settimeout(10)  # the 408 comes after the 4 s body deadline
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert statuses == [200] * 30
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_one_address_cannot_hold_more_requests_than_its_cap(stack, env, tmp_path):
    cap = 20
    gateway, _admin = start_gateway(env, tmp_path, stack.auth.url, stack.product.url,
                                    max_requests_per_client=str(cap), body_timeout_seconds="20")
    head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json"
            b"\r\nContent-Length: 1000\r\n\r\n{")
    try:
        with SlowClients(gateway.url, cap, head, b" ", max_seconds=20):
            def next_refused() -> tuple[requests.Response] | None:
                answer = requests.get(f"{gateway.url}/api/v1/products", timeout=5)
                return (answer,) if answer.status_code == 429 else None

            (refused,) = wait_until(next_refused, timeout=10,
                                    message="the address's next request is refused")
            assert refused.json()["error"]["code"] == "too_many_requests_in_progress"
            assert refused.headers["Retry-After"] == "1"
        # Slots come back as the slow connections go.
        wait_until(lambda: requests.get(f"{gateway.url}/api/v1/products", timeout=5).status_code
                   == 200, timeout=10, message="reads served again")
    finally:
        gateway.stop()
