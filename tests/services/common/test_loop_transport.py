"""The event loop's keep-alive transport, against the raw scripted servers the thread transport's
tests use (`tests.support.raw_server`), on asyncio's own loop and on uvloop (what Granian runs
when it is installed)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from urllib3.exceptions import DecodeError, NewConnectionError, ProtocolError, ReadTimeoutError

from services.common.loop_transport import LoopPool
from services.common.transport import Reply
from services.common.watchdog import Watch
from tests.support.processes import free_port
from tests.support.raw_server import (
    CHUNKED_HELLO_WORLD,
    ENCODED_ANSWERS,
    GZIPPED,
    Answer,
    RawServer,
    answer,
    until_close,
)

T = TypeVar("T")
Run = Callable[..., Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """`run(port, scenario, maxsize=4)`: a fresh loop awaiting `scenario(pool)` with a pool to
    127.0.0.1:`port` made on it, closed at the end."""
    factory = pytest.importorskip("uvloop").new_event_loop if request.param == "uvloop" else None

    def run(port: int, scenario: Callable[[LoopPool], Awaitable[T]], maxsize: int = 4,
            scheme: str = "http", ssl_context: ssl.SSLContext | None = None) -> T:
        async def main() -> T:
            pool = LoopPool(scheme, "127.0.0.1", port, maxsize=maxsize, ssl_context=ssl_context)
            try:
                return await scenario(pool)
            finally:
                pool.close()
                await asyncio.sleep(0)  # the closed transports' last callbacks

        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main())

    return run


@contextlib.contextmanager
def server(*script: Answer) -> Iterator[RawServer]:
    raw = RawServer(list(script))
    try:
        yield raw
    finally:
        raw.close()


async def get(pool: LoopPool, method: str = "GET", target: str = "/x", body: bytes | None = None,
              headers: dict[str, str] | None = None, read: float = 2.0, **kwargs: Any) -> Reply:
    return await pool.exchange(method, target, headers or {}, body, connect_timeout=1.0,
                               read_timeout=read, **kwargs)


async def eventually(condition: Callable[[], object], message: str, timeout: float = 5.0) -> None:
    """`wait_until` for a coroutine: the loop keeps running (its callbacks are what is awaited)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout}s")
        await asyncio.sleep(0.01)


def watch_for(seconds: float) -> Watch:
    now = time.monotonic()
    return Watch(read=seconds, deadline=now + 5, natural_limit=now + 5)


def close_without_answer(conn: socket.socket) -> None:
    conn.close()


def test_a_kept_alive_connection_is_reused_and_the_request_is_framed(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        first = await get(pool, "POST", "/api/v1/cart/items?x=1", body=b'{"n":1}',
                          headers={"Content-Type": "application/json", "traceparent": "00-ab-cd-01"})
        second = await get(pool)
        assert (first.status, first.data, second.status) == (200, b'{"a":1}', 200)
        assert first.headers.getlist("x-thing") == ["one", "two"]  # repeated headers kept apart
        assert raw.connections == 1 and pool.idle == 1

    with server(answer("200 OK", b'{"a":1}', "X-Thing: one", "X-Thing: two"), answer()) as raw:
        run(raw.port, scenario)
        sent = raw.requests[0].decode("latin-1")
        assert sent.startswith("POST /api/v1/cart/items?x=1 HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{raw.port}\r\n" in sent
        assert "Content-Length: 7\r\n" in sent and sent.endswith('\r\n\r\n{"n":1}')
        assert "traceparent: 00-ab-cd-01\r\n" in sent


def test_a_post_without_a_body_says_so_and_a_get_sends_no_length(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        await get(pool, "POST")
        await get(pool, "GET")

    with server() as raw:
        run(raw.port, scenario)
        assert b"Content-Length: 0\r\n" in raw.requests[0]
        assert b"Content-Length" not in raw.requests[1]


def test_chunked_and_close_delimited_bodies_are_read_whole(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        assert (await get(pool)).data == b"hello world"
        assert pool.idle == 1  # chunked framing ended exactly: kept
        assert (await get(pool)).data == b"part one, part two"
        assert pool.idle == 0  # closed by the server: not kept
        assert (await get(pool)).status == 200
        assert raw.connections == 2

    with server(CHUNKED_HELLO_WORLD, until_close, answer()) as raw:
        run(raw.port, scenario)


def test_head_and_bodiless_statuses_end_at_their_headers(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        head = await get(pool, "HEAD")
        assert (head.status, head.data, head.headers["Content-Length"]) == (200, b"", "1234")
        assert pool.idle == 0  # what follows a HEAD's headers is not trusted
        assert (await get(pool, "DELETE")).status == 204
        assert (await get(pool)).status == 304
        assert (await get(pool)).data == b"{}"
        assert raw.connections == 2 and pool.idle == 1

    with server(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n', answer()) as raw:
        run(raw.port, scenario)


def test_an_informational_answer_is_skipped_for_the_one_that_follows(run: Run) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"

    async def scenario(pool: LoopPool) -> None:
        reply = await get(pool, "POST", body=b"{}")
        assert (reply.status, reply.data, "Link" in reply.headers) == (201, b'{"id":1}', False)
        assert pool.idle == 1

    with server(early + answer("201 Created", b'{"id":1}')) as raw:
        run(raw.port, scenario)


def test_gzip_and_deflate_are_decoded_unless_asked_not_to(run: Run) -> None:

    async def scenario(pool: LoopPool) -> None:
        assert (await get(pool)).data == b'{"ok":true}'
        assert (await get(pool)).data == b"deflated"
        assert (await get(pool, decode_content=False)).data == GZIPPED
        with pytest.raises(DecodeError):
            await get(pool)

    with server(*ENCODED_ANSWERS) as raw:
        run(raw.port, scenario)


def test_a_refused_connection_is_a_new_connection_error(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        with pytest.raises(NewConnectionError):
            await get(pool)

    run(free_port(), scenario)


def test_a_silent_server_is_a_read_timeout(run: Run) -> None:
    release = threading.Event()

    async def scenario(pool: LoopPool) -> None:
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            await get(pool, read=0.2)
        assert time.monotonic() - started < 0.9
        assert pool.idle == 0  # a connection that timed out is never reused

    with server(lambda conn: release.wait(5)) as raw:
        try:
            run(raw.port, scenario)
        finally:
            release.set()


def test_the_read_timeout_bounds_each_wait_not_the_whole_answer(run: Run) -> None:
    def steady(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
        for byte in b"steady":
            time.sleep(0.08)
            conn.sendall(bytes([byte]))

    async def scenario(pool: LoopPool) -> None:
        started = time.monotonic()
        assert (await get(pool, read=0.25)).data == b"steady"  # well within it at every byte
        assert time.monotonic() - started > 0.25  # but not as a whole

    with server(steady) as raw:
        run(raw.port, scenario)


def test_a_watch_ends_a_dripping_answer_and_says_it_fired(run: Run) -> None:
    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
        for _ in range(50):
            time.sleep(0.05)
            try:
                conn.sendall(b"x")
            except OSError:
                return

    async def scenario(pool: LoopPool) -> None:
        watch = watch_for(0.3)
        started = time.monotonic()
        with pytest.raises(ProtocolError) as failed:
            await get(pool, read=1.0, watch=watch)  # each byte comes well within the read timeout
        assert isinstance(failed.value.args[1], TimeoutError)
        assert watch.fired and not watch.reused
        assert time.monotonic() - started < 1.5
        assert pool.idle == 0

    with server(drip) as raw:
        run(raw.port, scenario)


def test_an_idle_connection_the_server_closed_is_not_reused(run: Run) -> None:
    def answer_then_close(conn: socket.socket) -> None:
        conn.sendall(answer("200 OK", b"1", "Connection: keep-alive"))
        conn.close()  # closed while the client thinks it idle

    async def scenario(pool: LoopPool) -> None:
        assert (await get(pool)).data == b"1"
        await eventually(lambda: not pool._idle[0].alive(),
                         "the server's close reaches the idle connection")
        assert (await get(pool)).data == b"2"  # checked before reuse: a fresh connection, no error
        assert raw.connections == 2

    with server(answer_then_close, answer(body=b"2")) as raw:
        run(raw.port, scenario)


def test_an_idle_connection_the_server_spoke_on_unasked_is_not_reused(run: Run) -> None:
    answered = threading.Event()

    def answer_then_more(conn: socket.socket) -> None:
        conn.sendall(answer(body=b"1"))
        answered.wait(5)
        conn.sendall(answer(body=b"nobody asked"))

    async def scenario(pool: LoopPool) -> None:
        assert (await get(pool)).data == b"1"
        answered.set()
        await eventually(lambda: not pool._idle[0].alive(), "the unasked answer reaches the client")
        assert (await get(pool)).data == b"2"  # not the unasked one
        assert raw.connections == 2

    with server(answer_then_more, answer(body=b"2")) as raw:
        run(raw.port, scenario)


def test_a_stale_reused_connection_fails_as_a_remote_disconnect(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        await get(pool)
        watch = watch_for(2.0)
        with pytest.raises(ProtocolError) as failed:
            await get(pool, watch=watch)
        # The client retries this on a fresh connection: it must be recognisable.
        assert isinstance(failed.value.args[1], http.client.RemoteDisconnected)
        assert watch.reused and not watch.fired
        assert pool.idle == 0

    with server(answer(), close_without_answer) as raw:
        run(raw.port, scenario)


def test_a_header_that_would_split_the_request_is_refused_before_sending(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        with pytest.raises(ValueError, match="may not contain"):
            await get(pool, headers={"X-Evil": "a\r\nX-Injected: 1"})

    with server() as raw:
        run(raw.port, scenario)
        assert raw.requests == [] and raw.connections == 0


def test_no_more_than_maxsize_connections_wait_idle(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        replies = await asyncio.gather(*(get(pool) for _ in range(6)))
        assert [reply.status for reply in replies] == [200] * 6
        assert raw.connections == 6 and pool.idle == 2

    with server() as raw:
        run(raw.port, scenario, maxsize=2)


def test_a_closed_pool_keeps_no_connection_a_late_call_gives_back(run: Run) -> None:
    release = threading.Event()

    def late(conn: socket.socket) -> None:
        release.wait(5)
        conn.sendall(answer())

    async def scenario(pool: LoopPool) -> None:
        await get(pool)
        assert pool.idle == 1
        pool.close()  # the instance left the upstream
        assert pool.idle == 0
        call = asyncio.create_task(get(pool))  # one still in flight
        await eventually(lambda: len(raw.requests) == 2, "the late call reaches the server")
        release.set()
        assert (await call).status == 200
        assert pool.idle == 0 and raw.connections == 2

    with server(answer(), late) as raw:
        try:
            run(raw.port, scenario)
        finally:
            release.set()


def test_a_cancelled_exchange_drops_its_connection_and_disarms_its_watch(run: Run) -> None:
    closed = threading.Event()

    def hang(conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(1)  # nothing comes: the client closes
        closed.set()

    async def scenario(pool: LoopPool) -> None:
        watch = watch_for(5.0)
        call = asyncio.create_task(get(pool, watch=watch, read=5.0))
        await eventually(lambda: raw.requests, "the request reaches the server")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert pool.idle == 0
        await eventually(closed.is_set, "the server sees the connection closed")
        assert not watch.expire()  # disarmed: a late expiry no longer counts

    with server(hang) as raw:
        run(raw.port, scenario)


def test_a_malformed_answer_is_a_protocol_error(run: Run) -> None:
    async def scenario(pool: LoopPool) -> None:
        with pytest.raises(ProtocolError, match="not valid HTTP"):
            await get(pool)

    with server(b"SMTP ready\r\n\r\n") as raw:
        run(raw.port, scenario)


def test_endless_headers_are_refused_not_buffered(run: Run) -> None:
    def endless(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        try:
            for _ in range(200):
                conn.sendall(line)
        except OSError:
            return

    async def scenario(pool: LoopPool) -> None:
        with pytest.raises(ProtocolError, match="headers exceed"):
            await get(pool)

    with server(endless) as raw:
        run(raw.port, scenario)


def test_https_is_spoken_with_the_context_given(run: Run, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    heads: list[bytes] = []

    def serve_one_connection() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            buffer = b""
            for _ in range(2):
                while b"\r\n\r\n" not in buffer:
                    buffer += tls.recv(65536)
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                heads.append(head)
                tls.sendall(answer(body=b"secret"))

    async def scenario(pool: LoopPool) -> None:
        assert (await get(pool)).data == b"secret"
        assert (await get(pool)).data == b"secret"  # the one connection served, kept alive

    threading.Thread(target=serve_one_connection, daemon=True).start()
    try:
        run(port, scenario, scheme="https", ssl_context=ssl.create_default_context(cafile=cert))
    finally:
        listener.close()
    assert len(heads) == 2 and f"Host: 127.0.0.1:{port}".encode() in heads[0]


def _self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)
