"""Keep-alive HTTP/1.1 to one upstream instance: a raw socket, answers parsed by httptools.

The resilient client's calls go through this instead of urllib3 and `http.client`, whose
per-call cost (header objects built through the `email` package, a response object per
layer) was most of the gateway's CPU per proxied read. One `KeepAlivePool` per instance keeps
up to `maxsize` idle connections (more may be open at once; the extra ones are closed when
they finish, like urllib3's non-blocking pool).

What the client relies on is kept exactly:
- Errors are urllib3's own exception types, so the client classifies them as before: a refused
  or failed connect is `NewConnectionError`, a connect past its timeout `ConnectTimeoutError`,
  a socket read past its timeout `ReadTimeoutError`, anything else on the way
  `ProtocolError` (with the `OSError` or `http.client.RemoteDisconnected` behind it as its
  second argument, which is how a stale keep-alive connection is recognised).
- A `Watch` (services.common.watchdog) is armed when the request is sent, with whether it went
  out on a reused connection; firing it shuts the socket down, which ends a blocked read.
- gzip and deflate bodies are decoded (`DECODED_ENCODINGS`), as urllib3 did.

The event loop's twin (`services.common.loop_transport.LoopPool`) shares everything here but
the I/O: the request's bytes (`serialize_request`), the parse (`Answer`), the idle stack and
the error types (`OriginPool`).
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import socket
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httptools
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.wait import wait_for_read

from services.common.watchdog import Watch

__all__ = ["DECODED_ENCODINGS", "Answer", "AnswerHeaders", "KeepAlivePool", "OriginPool", "Reply", "serialize_request"]

# Content-Encodings decoded here when the caller asks for decoded content.
DECODED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
RECV_BYTES = 65536
# An answer's status line and headers together, at most (http.client allows 100 lines of 64 KiB;
# no service here sends more than a few hundred bytes).
MAX_HEAD_BYTES = 65536
USER_AGENT = "breakwater"
# Methods whose requests carry a body by definition: without one they say `Content-Length: 0`.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Set by the transport from the body it sends.
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})


class AnswerHeaders(HTTPHeaderDict):
    """An answer's headers: urllib3's case-insensitive `HTTPHeaderDict`, and `received`, every
    (name, value) as it came off the wire, repeats apart, in order (what a proxy forwards;
    not changed by later changes to the dict, and None in a copy, which urllib3 makes
    through the plain constructor)."""

    received: list[tuple[str, str]] | None = None

    @classmethod
    def of(cls, pairs: list[tuple[str, str]]) -> AnswerHeaders:
        """The headers of an answer, filled in one pass: what `add` does for each pair (a list
        per lower-case name, its first spelling, then every value), without a call each."""
        headers = cls.__new__(cls)
        HTTPHeaderDict.__init__(headers)
        headers.received = pairs
        container = headers._container
        for name, value in pairs:
            lower = name.lower()
            found = container.get(lower)
            if found is None:
                container[lower] = [name, value]
            else:
                found.append(value)
        return headers


@dataclass(frozen=True)
class Reply:
    """One whole answer."""

    status: int
    headers: HTTPHeaderDict
    data: bytes


class Answer:
    """One answer as httptools parses it (its callbacks), fed by either transport's reads."""

    __slots__ = ("parser", "head_only", "received", "status", "headers", "chunks", "headers_done",
                 "complete", "keep_alive")

    def __init__(self, head_only: bool) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.head_only = head_only  # the answer to a HEAD: headers only, whatever they announce
        self.received = 0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = self.complete = self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # llhttp answers this only while the message is in progress (false once complete).
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        self.chunks.append(data)

    def on_message_complete(self) -> None:
        if self.parser is not None and self.parser.get_status_code() < 200:
            # An informational answer (100 Continue, 103 Early Hints): the real one follows.
            self.headers, self.chunks = [], []
            self.headers_done = self.keep_alive = False
            return
        self.complete = True

    def feed(self, data: bytes) -> bool:
        """Parse the next bytes read; whether the answer is now whole."""
        self.received += len(data)
        self.parser.feed_data(data)  # type: ignore[union-attr]
        if self.complete or (self.head_only and self.headers_done):
            return True
        if not self.headers_done and self.received > MAX_HEAD_BYTES:
            raise ProtocolError(f"the answer's headers exceed {MAX_HEAD_BYTES} bytes", None)
        return False

    def end(self) -> None:
        """The server closed the connection: the end of a body framed by closing, else an error."""
        if not self.received:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        if not (self.headers_done and not self.complete and self._until_close()):
            raise ProtocolError("Connection broken: the answer ended early", None)

    def _until_close(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def finish(self) -> bool:
        """Reading is over; whether the connection may carry another request: only when the
        server keeps it and the answer ended exactly where it should."""
        self.status = self.parser.get_status_code()  # type: ignore[union-attr]
        self.parser = None  # no cycle left for the garbage collector
        return self.complete and not self.head_only and self.keep_alive and self.status >= 200

    def reply(self, decode_content: bool) -> Reply:
        """The finished answer as the client takes it (repeated headers kept apart)."""
        headers = AnswerHeaders.of([(name.decode("latin-1"), value.decode("latin-1"))
                                    for name, value in self.headers])
        data = b"".join(self.chunks)
        if decode_content and data:
            data = _decoded(data, headers.get("Content-Encoding"))
        return Reply(self.status, headers, data)


def serialize_request(host_header: str, method: str, target: str, headers: Mapping[str, str],
                      body: bytes | None) -> bytes:
    """The whole request, to be written at once; a header that would split it is a ValueError."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n"]
    agent = False
    for name, value in headers.items():
        lower = name.lower()
        if lower in _FRAMING:
            continue
        if _illegal(name) or _illegal(value) or ":" in name:
            raise ValueError(f"header {name!r} has a character a header may not contain")
        agent = agent or lower == "user-agent"
        lines.append(f"{name}: {value}\r\n")
    if not agent:
        lines.append(f"User-Agent: {USER_AGENT}\r\n")
    if body is not None or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("latin-1")
    return head + body if body else head


class Connection:
    """One socket to the instance; `sock` is what a watch shuts down."""

    __slots__ = ("sock", "sent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = 0  # requests sent on it so far

    def alive(self) -> bool:
        """Whether an idle connection can be reused: the server has not closed it (and sent
        nothing unasked, which would be the start of an answer nobody reads)."""
        try:
            return not wait_for_read(self.sock, timeout=0.0)
        except OSError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.sock.close()


class Reusable(Protocol):
    """What a pool keeps idle: a connection that knows whether it can still be used."""

    sent: int  # requests sent on it so far

    def alive(self) -> bool: ...

    def close(self) -> None: ...


ConnectionT = TypeVar("ConnectionT", bound=Reusable)


class OriginPool(Generic[ConnectionT]):
    """What the thread pool and the event loop's pool share: the origin, the idle connections
    (most recent on top, at most `maxsize`), and urllib3's error types for what went wrong."""

    def __init__(self, scheme: str, host: str, port: int | None, maxsize: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"{scheme!r}: an upstream is reached over http or https")
        self.scheme, self.host = scheme, host
        self.port = port or (443 if scheme == "https" else 80)
        self.maxsize = maxsize
        default_port = self.port == (443 if scheme == "https" else 80)
        host_name = f"[{host}]" if ":" in host else host
        self._host_header = host_name if default_port else f"{host_name}:{self.port}"
        self.origin = f"{scheme}://{host_name}:{self.port}"  # what spans and logs call it
        self._ssl = (ssl_context or ssl.create_default_context()) if scheme == "https" else None
        self._idle: collections.deque[ConnectionT] = collections.deque()
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scheme}://{self._host_header}, idle={len(self._idle)})"

    @property
    def idle(self) -> int:
        """Connections waiting to be reused."""
        return len(self._idle)

    def _reused(self) -> ConnectionT | None:
        """The most recent idle connection still fit to use; the unfit ones are closed."""
        idle = self._idle
        while True:
            try:
                connection = idle.pop()
            except IndexError:  # empty (another thread may have taken the last one)
                return None
            if connection.alive():
                return connection
            connection.close()

    def _give_back(self, connection: ConnectionT, keep: bool) -> None:
        """An exchange is over: keep the connection idle if it may be reused and there is room."""
        if keep and not self._closed and len(self._idle) < self.maxsize:
            self._idle.append(connection)
            if self._closed:  # closed meanwhile: nothing may wait in a closed pool
                self.close()
        else:
            connection.close()

    def _connect_failure(self, exc: OSError, timeout: float, *, tls: bool = False) -> HTTPError:
        """urllib3's error for a connect that failed (`tls`: in the TLS handshake)."""
        if tls or isinstance(exc, ssl.SSLError):
            return NewConnectionError(None, f"TLS to {self.host} failed: {exc}")  # type: ignore[arg-type]
        if isinstance(exc, TimeoutError):
            return ConnectTimeoutError(
                None, f"Connection to {self.host} timed out. (connect timeout={timeout})")
        return NewConnectionError(
            None, f"Failed to establish a new connection: {exc}")  # type: ignore[arg-type]

    def _exchange_failure(self, exc: OSError | httptools.HttpParserError, target: str,
                          read_timeout: float) -> HTTPError:
        """urllib3's error for a request sent or an answer read that failed."""
        if isinstance(exc, TimeoutError):
            return ReadTimeoutError(self, target,  # type: ignore[arg-type]
                                    f"Read timed out. (read timeout={read_timeout})")
        if isinstance(exc, httptools.HttpParserError):
            return ProtocolError(f"the answer is not valid HTTP/1.1: {exc}", exc)
        # RemoteDisconnected (an OSError too) behind it is how a stale connection is recognised.
        return ProtocolError("Connection aborted.", exc)

    def close(self) -> None:
        """Close every idle connection; connections in use close when they finish."""
        self._closed = True
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:  # empty (another thread may have taken the last one)
                return
            connection.close()


class KeepAlivePool(OriginPool[Connection]):
    """Keep-alive connections to one `scheme://host:port`, reused most recent first."""

    def exchange(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
                 *, connect_timeout: float, read_timeout: float, watch: Watch | None = None,
                 decode_content: bool = True) -> Reply:
        """Send one request and read its whole answer.

        `read_timeout` bounds every socket read; `watch`, when given, bounds the whole answer
        (armed once the request is sent, disarmed before this returns or raises; the caller
        asks `watch.fired`)."""
        request = serialize_request(self._host_header, method, target, headers, body)
        connection = self._reused() or self._connect(connect_timeout)
        answer = Answer(method == "HEAD")
        keep = False
        try:
            if watch is not None:
                watch.arm(connection, reused=connection.sent > 0)
            try:
                connection.sock.settimeout(read_timeout)
                connection.sock.sendall(request)
                connection.sent += 1
                self._read(connection.sock, answer)
            except (OSError, httptools.HttpParserError) as exc:
                raise self._exchange_failure(exc, target, read_timeout) from exc
            keep = answer.finish()
        finally:
            fired = watch.disarm() if watch is not None else False
            self._give_back(connection, keep and not fired)
        return answer.reply(decode_content)

    def _connect(self, timeout: float) -> Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise self._connect_failure(exc, timeout) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            try:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:
                sock.close()
                raise self._connect_failure(exc, timeout, tls=True) from exc
        return Connection(sock)

    @staticmethod
    def _read(sock: socket.socket, answer: Answer) -> None:
        while True:
            data = sock.recv(RECV_BYTES)
            if not data:
                answer.end()  # raises unless the body is one that ends with the connection
                return
            if answer.feed(data):
                return


def _illegal(text: str) -> bool:
    """Whether `text` would break the header block (CR, LF, NUL: response splitting)."""
    return "\n" in text or "\r" in text or "\0" in text


def _decoded(data: bytes, encoding: str | None) -> bytes:
    if encoding is None:
        return data
    encoding = encoding.strip().lower()
    if encoding not in DECODED_ENCODINGS:
        return data
    try:
        if encoding == "deflate":
            try:
                return zlib.decompress(data)
            except zlib.error:  # raw deflate, as some servers send it
                return zlib.decompress(data, -zlib.MAX_WBITS)
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    except zlib.error as exc:
        raise DecodeError(f"the {encoding} body could not be decoded: {exc}", exc) from exc
