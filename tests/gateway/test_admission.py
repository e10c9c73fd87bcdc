"""Admission limits per route group: a storm on cart cannot take every gateway worker thread.

Clients that send a cart request's headers and then its body very slowly hold a gateway worker
each while it reads; the upstream bulkhead cannot help (no upstream call has started). With
the group's admission limit the excess is refused at once and catalog reads keep flowing.

These run the WSGI app on a plain thread pool whose threads read bodies themselves (as a WSGI
server like gunicorn does): the gateway's own front reads bodies on its event loop before any
thread is taken (tests/attacks), so behind it this storm never reaches a worker at all.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests

from tests.gateway.fakes import RunningGateway
from tests.support.processes import wait_until

WORKERS, CART_ADMISSION, STORM = 6, 2, 6


@contextmanager
def slow_body(gateway: RunningGateway, headers: dict[str, str]) -> Iterator[socket.socket]:
    """A cart POST whose headers are sent and whose 100-byte body never arrives."""
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    lines = ["POST /api/v1/cart/items HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
             "Content-Length: 100", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"product_id": ')
    try:
        yield sock
    finally:
        sock.close()


def answer_of(sock: socket.socket) -> str:
    """The whole answer the gateway sent back (up to its close), or "" if it has not answered.

    The head and the body may come in separate segments, so once the answer has begun it is
    read to the end of the connection (the refusal closes it)."""
    sock.settimeout(0.05)
    try:
        first = sock.recv(4096)
    except (TimeoutError, BlockingIOError):
        return ""
    chunks = [first]
    sock.settimeout(5)
    while chunks[-1]:
        chunks.append(sock.recv(4096))
    return b"".join(chunks).decode("latin-1")


def catalog_reads(gateway: RunningGateway, count: int) -> list[int | None]:
    statuses: list[int | None] = []
    for number in range(count):
        try:
            statuses.append(gateway.get(f"/api/v1/products/{number}", timeout=2).status_code)
        except requests.RequestException:
            statuses.append(None)
    return statuses


def test_a_slow_body_storm_on_cart_is_refused_past_its_admission_limit(start_gateway, upstreams, bearer):
    gateway = start_gateway(threads=WORKERS, front=False, route_overrides=f"cart.admission={CART_ADMISSION}")
    with ExitStack() as stack:
        storm = [stack.enter_context(slow_body(gateway, bearer)) for _ in range(STORM)]
        answers: dict[int, str] = {}

        def refused_count() -> int:
            for number, sock in enumerate(storm):
                if number not in answers:
                    text = answer_of(sock)
                    if text:
                        answers[number] = text
            return len(answers)

        wait_until(lambda: refused_count() == STORM - CART_ADMISSION, timeout=10,
                   message="the requests past the cart limit are refused")
        for text in answers.values():
            assert text.startswith("HTTP/1.1 503")
            assert "Retry-After: 1" in text and "overloaded" in text
        assert catalog_reads(gateway, 10) == [200] * 10
        page = gateway.admin_get("/gateway/upstreams").json()
        cart = next(r for r in page["routes"] if r["group"] == "cart")
        assert (cart["in_flight"], cart["refused"]) == (CART_ADMISSION, STORM - CART_ADMISSION)
    assert upstreams["cart"].count() == 0  # no body ever arrived: nothing went upstream


def test_without_the_limit_the_same_storm_takes_every_worker(start_gateway, upstreams, bearer):
    gateway = start_gateway(threads=WORKERS, front=False, route_overrides="cart.admission=100")
    with ExitStack() as stack:
        for _ in range(STORM):
            stack.enter_context(slow_body(gateway, bearer))
        assert catalog_reads(gateway, 2) == [None, None]


def test_a_body_cut_short_is_never_forwarded_half(start_gateway, upstreams, bearer):
    """A client that sends part of its body and leaves gets nothing sent upstream: the app
    behind a plain WSGI server checks the length it read (the front checks it itself)."""
    gateway = start_gateway(threads=WORKERS, front=False)
    with slow_body(gateway, bearer) as sock:
        sock.shutdown(socket.SHUT_WR)  # the client is done sending: 15 of 100 bytes
        answer = b""
        sock.settimeout(5)
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"incomplete_body" in answer
    assert upstreams["cart"].count() == 0


def test_read_body_refuses_a_short_body():
    import io

    from gateway.proxy import read_body
    from services.common.errors import ApiError

    environ = {"CONTENT_LENGTH": "100", "wsgi.input": io.BytesIO(b'{"product_id": ')}
    with pytest.raises(ApiError) as refused:
        read_body(environ, 1000)
    assert (refused.value.status, refused.value.code) == (400, "incomplete_body")
    assert read_body({"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}, 1000) == b"{}"
