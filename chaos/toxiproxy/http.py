"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length and chunked bodies.

Enough for a JSON control API used by programs; it shares the event loop with the proxies so
that a change made through the API is in force on every connection when the answer leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

# Toxiproxy's API server (api.go `Listen`): a request must arrive within 15 s of the
# connection (or of its first byte, on a kept-alive one), a response be written within 30 s,
# and a kept-alive connection may idle 60 s between requests.
READ_TIMEOUT = 15.0
WRITE_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0


@dataclass
class Request:
    """A parsed request; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    """A response to write; `Content-Length` is added when writing."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request we can answer."""


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers, ignored
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise BadRequest("body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length", "0").strip() or "0"
    if not length.isdigit():
        raise BadRequest("bad Content-Length")
    if int(length) > MAX_BODY_BYTES:
        raise BadRequest("body too large")
    return await reader.readexactly(int(length))


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, start: bytes = b""
) -> tuple[Request, bool] | None:
    """The next request and whether the connection stays open after it; None at EOF.

    `start` is what was already read of it (the byte that ended an idle wait).
    """
    try:
        head = start + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if (start + exc.partial).strip():
            raise BadRequest("truncated request") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest("headers too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("bad request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    url = urlsplit(target)
    request = Request(method, unquote(url.path), parse_qs(url.query), headers, body)
    return request, keep_alive


def encode_response(response: Response, keep_alive: bool, head: bool = False) -> bytes:
    """Status line, headers and body as bytes; an answer to HEAD carries no body."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    if response.status != 204 and response.status >= 200:
        lines.append(f"Content-Length: {len(response.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    body = b"" if head else response.body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpServer:
    """Serves `handler` on a TCP address; `close()` also closes idle keep-alive connections."""

    def __init__(
        self,
        handler: Handler,
        error_response: Callable[[int, str], Response],
        read_timeout: float = READ_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.handler = handler
        self.error_response = error_response
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.idle_timeout = idle_timeout
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the address bound (port 0 picks a free one)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_HEADER_BYTES, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            first = True
            while True:
                try:
                    parsed = await self._next_request(reader, writer, first)
                except BadRequest as exc:
                    writer.write(encode_response(self.error_response(400, str(exc)), False))
                    break
                except TimeoutError:
                    break  # as net/http: the connection is dropped without an answer
                if parsed is None:
                    break
                first = False
                request, keep_alive = parsed
                try:
                    response = await self.handler(request)
                except Exception:
                    log.exception("unhandled error answering %s %s", request.method, request.path)
                    response = self.error_response(500, "internal error")
                writer.write(encode_response(response, keep_alive, request.method == "HEAD"))
                await asyncio.wait_for(writer.drain(), self.write_timeout)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _next_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bool
    ) -> tuple[Request, bool] | None:
        """The next request within the read timeout; None when the client ends or idles out.

        A kept-alive connection first waits for the next request's first byte, for the idle
        timeout; the read timeout then runs from that byte (from the accept, for the first).
        """
        start = b""
        if not first:
            try:
                start = await asyncio.wait_for(reader.read(1), self.idle_timeout)
            except TimeoutError:
                return None
            if not start:
                return None
        return await asyncio.wait_for(read_request(reader, writer, start), self.read_timeout)

    async def close(self) -> None:
        """Stop listening and close every client connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
