"""Keep-alive HTTP/1.1 to one upstream instance from an event loop (the gateway's: Granian RSGI,
one loop per worker process).

The twin of `services.common.transport.KeepAlivePool`, sharing everything with it but the I/O
(the request's bytes, the httptools parse, the idle stack, urllib3's error types): the request
is written with one `transport.write` and the answer parsed in an `asyncio.Protocol`'s callbacks
(asyncio's streams measured slower). A `Watch` bounds the whole answer through the loop's timer,
not the watchdog thread. One timer per connection serves both that and the read timeout; it is
moved on only when it fires before its time (bytes came meanwhile, or it was set for an earlier
exchange), so an exchange that ends within its read timeout costs no timer of its own.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from typing import cast

import httptools
from urllib3.exceptions import ProtocolError

from services.common.transport import Answer, OriginPool, Reply, serialize_request
from services.common.watchdog import Watch

__all__ = ["LoopPool"]


class _AnswerLate(Exception):
    """The watch's time came before the answer was whole."""


class LoopConnection(asyncio.Protocol):
    """One connection to the instance, and the answer being read on it (None while idle)."""

    __slots__ = ("loop", "transport", "open", "sent", "answer", "waiter", "read_timeout",
                 "last_read", "expires_at", "timer", "timer_at")

    transport: asyncio.Transport

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open = True  # neither closed by the server nor spoken to unasked
        self.sent = 0  # requests sent on it so far
        self.answer: Answer | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.read_timeout = 0.0
        self.last_read = 0.0  # loop time of the request written or of the last bytes read
        self.expires_at: float | None = None  # time.monotonic() the watch ends the answer at
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0  # loop time the timer fires at

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # asyncio and uvloop set it too; said here rather than assumed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def alive(self) -> bool:
        """Whether an idle connection can be reused: the server has neither closed it nor sent
        anything unasked (as the loop's callbacks saw; no system call)."""
        return self.open

    def send(self, request: bytes, answer: Answer, read_timeout: float,
             expires_at: float | None) -> asyncio.Future[None]:
        """Write `request`; the future is done when `answer` is whole, or failed."""
        loop = self.loop
        self.answer, self.read_timeout, self.expires_at = answer, read_timeout, expires_at
        self.waiter = waiter = loop.create_future()
        now = self.last_read = loop.time()
        due = now + read_timeout
        if expires_at is not None:  # a monotonic time: the loop's clock may be another
            due = min(due, now + (expires_at - time.monotonic()))
        timer = self.timer
        if timer is None or self.timer_at > due:  # one due sooner serves: it moves itself on
            if timer is not None:
                timer.cancel()
            self.timer, self.timer_at = loop.call_at(due, self._time_up), due
        if not self.open:  # closed between the connect and now
            self._ended()
            return waiter
        self.transport.write(request)
        self.sent += 1
        return waiter

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None:  # unasked: the start of an answer nobody would read
            self.open = False
            self.transport.abort()
            return
        try:
            whole = answer.feed(data)
        except (ProtocolError, httptools.HttpParserError) as exc:
            self._settle(exc)
            return
        if whole:
            self._settle(None)
        else:
            self.last_read = self.loop.time()

    def eof_received(self) -> bool:
        self.open = False
        if self.answer is not None:
            self._ended()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.answer is not None:
            if exc is None:
                self._ended()
            else:
                self._settle(exc)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        """Drop the connection, an answer half read included."""
        self.open = False
        self.answer = self.waiter = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport.abort()

    def _ended(self) -> None:
        """The server closed the connection with an answer pending."""
        try:
            self.answer.end()  # type: ignore[union-attr]
        except (ProtocolError, OSError) as exc:
            self._settle(exc)
            return
        self._settle(None)  # a body that ends with the connection

    def _settle(self, error: BaseException | None) -> None:
        waiter = self.waiter
        self.answer = self.waiter = None
        if waiter is not None and not waiter.done():  # done: cancelled
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _time_up(self) -> None:
        self.timer = None
        if self.answer is None:  # set for an exchange that has ended
            return
        loop = self.loop
        now = loop.time()
        due = self.last_read + self.read_timeout
        if self.expires_at is not None:
            left = self.expires_at - time.monotonic()
            if left <= 0:
                self._settle(_AnswerLate())
                return
            due = min(due, now + left)
        if due <= now:
            self._settle(TimeoutError("no byte of the answer within the read timeout"))
            return
        self.timer, self.timer_at = loop.call_at(due, self._time_up), due


class LoopPool(OriginPool[LoopConnection]):
    """Keep-alive connections to one scheme://host:port, used from ONE event loop."""

    async def exchange(self, method: str, target: str, headers: Mapping[str, str],
                       body: bytes | None, *, connect_timeout: float, read_timeout: float,
                       watch: Watch | None = None, decode_content: bool = True) -> Reply:
        """Send one request and read its whole answer.

        `read_timeout` bounds every wait for bytes; `watch`, when given, bounds the whole answer
        (its clock started as the request is written, disarmed before this returns or raises;
        the caller asks `watch.fired`). Cancelled, the connection is dropped."""
        connection: LoopConnection | None = None
        keep = False
        try:
            request = serialize_request(self._host_header, method, target, headers, body)
            connection = self._reused() or await self._connect(connect_timeout)
            answer = Answer(method == "HEAD")
            expires_at = None if watch is None else watch.begin(reused=connection.sent > 0)
            try:
                await connection.send(request, answer, read_timeout, expires_at)
            except (OSError, httptools.HttpParserError) as exc:
                raise self._exchange_failure(exc, target, read_timeout) from exc
            except _AnswerLate:
                watch.expire()  # type: ignore[union-attr]
                raise ProtocolError("Connection aborted.", TimeoutError(
                    "the answer did not complete within the attempt's time limit")) from None
            keep = answer.finish()
        finally:
            fired = watch.disarm() if watch is not None else False
            if connection is not None:
                self._give_back(connection, keep and not fired)
        return answer.reply(decode_content)

    async def _connect(self, timeout: float) -> LoopConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: LoopConnection(loop), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None)
        except OSError as exc:  # the timeout's TimeoutError included
            raise self._connect_failure(exc, timeout) from exc
        return connection
