"""The keep-alive transport under the resilient client, against raw scripted servers on loopback
(`tests.support.raw_server`: each answer is sent exactly as the test wrote it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from urllib3.exceptions import DecodeError, NewConnectionError, ProtocolError, ReadTimeoutError

from services.common.transport import KeepAlivePool
from services.common.watchdog import Watch
from tests.support.processes import free_port, wait_until
from tests.support.raw_server import (
    CHUNKED_HELLO_WORLD,
    ENCODED_ANSWERS,
    GZIPPED,
    Answer,
    RawServer,
    answer,
    until_close,
)


@contextmanager
def server(*script: Answer) -> Iterator[tuple[RawServer, KeepAlivePool]]:
    raw = RawServer(list(script))
    pool = KeepAlivePool("http", "127.0.0.1", raw.port, maxsize=4)
    try:
        yield raw, pool
    finally:
        pool.close()
        raw.close()


def get(pool: KeepAlivePool, method: str = "GET", target: str = "/x", body: bytes | None = None,
        headers: dict[str, str] | None = None, read: float = 2.0, **kwargs: object):
    return pool.exchange(method, target, headers or {}, body, connect_timeout=1.0,
                         read_timeout=read, **kwargs)


def close_without_answer(conn: socket.socket) -> None:
    conn.close()


def test_a_kept_alive_connection_is_reused_and_the_request_is_framed() -> None:
    with server(answer("200 OK", b'{"a":1}', "X-Thing: one", "X-Thing: two"), answer()) as (raw, pool):
        first = get(pool, "POST", "/api/v1/cart/items?x=1", body=b'{"n":1}',
                    headers={"Content-Type": "application/json", "traceparent": "00-ab-cd-01"})
        second = get(pool)
        assert (first.status, first.data, second.status) == (200, b'{"a":1}', 200)
        assert first.headers.getlist("x-thing") == ["one", "two"]  # repeated headers kept apart
        assert raw.connections == 1 and pool.idle == 1
        sent = raw.requests[0].decode("latin-1")
        assert sent.startswith("POST /api/v1/cart/items?x=1 HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{raw.port}\r\n" in sent
        assert "Content-Length: 7\r\n" in sent and sent.endswith('\r\n\r\n{"n":1}')
        assert "traceparent: 00-ab-cd-01\r\n" in sent


def test_a_post_without_a_body_says_so_and_a_get_sends_no_length() -> None:
    with server() as (raw, pool):
        get(pool, "POST")
        get(pool, "GET")
        assert b"Content-Length: 0\r\n" in raw.requests[0]
        assert b"Content-Length" not in raw.requests[1]


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    with server(CHUNKED_HELLO_WORLD, until_close, answer()) as (raw, pool):
        assert get(pool).data == b"hello world"
        assert pool.idle == 1  # chunked framing ended exactly: kept
        assert get(pool).data == b"part one, part two"
        assert pool.idle == 0  # closed by the server: not kept
        assert get(pool).status == 200
        assert raw.connections == 2


def test_head_and_bodiless_statuses_end_at_their_headers() -> None:
    with server(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n", answer()) as (_raw, pool):
        head = get(pool, "HEAD")
        assert (head.status, head.data, head.headers["Content-Length"]) == (200, b"", "1234")
        assert get(pool, "DELETE").status == 204
        assert get(pool).status == 200


def test_gzip_and_deflate_are_decoded_unless_asked_not_to() -> None:
    with server(*ENCODED_ANSWERS) as (_raw, pool):
        assert get(pool).data == b'{"ok":true}'
        assert get(pool).data == b"deflated"
        assert get(pool, decode_content=False).data == GZIPPED
        with pytest.raises(DecodeError):
            get(pool)


def test_a_refused_connection_is_a_new_connection_error() -> None:
    pool = KeepAlivePool("http", "127.0.0.1", free_port(), maxsize=1)
    with pytest.raises(NewConnectionError):
        get(pool)


def test_a_silent_server_is_a_read_timeout() -> None:
    with server(lambda conn: time.sleep(1.0)) as (_raw, pool):
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            get(pool, read=0.2)
        assert time.monotonic() - started < 0.9
        assert pool.idle == 0  # a connection that timed out is never reused


def test_a_stale_reused_connection_fails_as_a_remote_disconnect() -> None:
    with server(answer(), close_without_answer) as (_raw, pool):
        get(pool)
        with pytest.raises(ProtocolError) as failed:
            get(pool)
        # The client retries this on a fresh connection: it must be recognisable.
        assert isinstance(failed.value.args[1], ConnectionResetError)


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    def answer_then_close(conn: socket.socket) -> None:
        conn.sendall(answer("200 OK", b"1", "Connection: keep-alive"))
        conn.close()  # closed while the client thinks it idle

    with server(answer_then_close, answer(body=b"2")) as (raw, pool):
        assert get(pool).data == b"1"
        # The server's FIN reaches the idle connection (what the check before reuse looks for).
        wait_until(lambda: not pool._idle[0].alive(), timeout=5,
                   message="the server's close reaches the idle connection")
        assert get(pool).data == b"2"  # checked before reuse: a fresh connection, no error
        assert raw.connections == 2


def test_a_watch_ends_a_dripping_answer_and_says_it_fired() -> None:
    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
        for _ in range(50):
            time.sleep(0.05)
            try:
                conn.sendall(b"x")
            except OSError:
                return

    with server(drip) as (_raw, pool):
        now = time.monotonic()
        watch = Watch(read=0.3, deadline=now + 5, natural_limit=now + 5)
        started = time.monotonic()
        with pytest.raises(ProtocolError):
            get(pool, read=1.0, watch=watch)  # each byte comes well within the read timeout
        assert watch.fired and not watch.reused
        assert time.monotonic() - started < 1.5
        assert pool.idle == 0


def test_a_header_that_would_split_the_request_is_refused_before_sending() -> None:
    with server() as (raw, pool):
        with pytest.raises(ValueError, match="may not contain"):
            get(pool, headers={"X-Evil": "a\r\nX-Injected: 1"})
        assert raw.requests == []


def test_no_more_than_maxsize_connections_wait_idle() -> None:
    with server() as (_raw, pool):
        barrier = threading.Barrier(6)

        def call() -> None:
            barrier.wait()
            get(pool)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert pool.idle <= pool.maxsize


def test_a_malformed_answer_is_a_protocol_error() -> None:
    with server(b"SMTP ready\r\n\r\n") as (_raw, pool), pytest.raises(ProtocolError):
        get(pool)


def test_an_informational_answer_is_skipped_for_the_one_that_follows() -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    with server(early + answer("201 Created", b'{"id":1}')) as (_raw, pool):
        reply = get(pool, "POST", body=b"{}")
        assert (reply.status, reply.data, "Link" in reply.headers) == (201, b'{"id":1}', False)
        assert pool.idle == 1


def test_endless_headers_are_refused_not_buffered() -> None:
    def endless(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        try:
            for _ in range(200):
                conn.sendall(line)
        except OSError:
            return

    with server(endless) as (_raw, pool), pytest.raises(ProtocolError, match="headers exceed"):
        get(pool)


def test_a_closed_pool_keeps_no_connection_a_late_call_gives_back() -> None:
    with server(answer(), answer()) as (raw, pool):
        get(pool)
        assert pool.idle == 1
        pool.close()  # the instance left the upstream while a call was still in flight
        assert pool.idle == 0
        assert get(pool).status == 200
        assert pool.idle == 0 and raw.connections == 2


def test_answer_headers_are_urllib3s_dict_and_keep_what_came_in_order() -> None:
    from urllib3 import HTTPHeaderDict

    from services.common.transport import AnswerHeaders

    pairs = [("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("set-cookie", "b=2"),
             ("X-Empty", "")]
    headers = AnswerHeaders.of(pairs)
    expected = HTTPHeaderDict()
    for name, value in pairs:
        expected.add(name, value)

    assert headers == expected
    assert list(headers.items()) == list(expected.items())
    assert headers.getlist("SET-COOKIE") == ["a=1", "b=2"] and headers["x-empty"] == ""
    assert headers.received == pairs
    headers["Content-Type"] = "application/json"  # the dict changes; what came in does not
    assert headers.received == pairs and headers["content-type"] == "application/json"
    copied = headers.copy()  # urllib3 builds copies through the constructor
    assert isinstance(copied, AnswerHeaders) and copied == headers
    assert copied.received is None  # not an answer as received: read it as a dict
