"""The least proxy Python can be without Granian: one uvloop event loop that both parses the
client's requests (httptools, in `asyncio.Protocol` callbacks) and makes the upstream exchange
(the resilient client's `LoopPool`), with no thread between the two, no routing, edge checks,
breakers, headers, metrics or tracing.

    python -m bench.asyncio_floor --port N --upstream 127.0.0.1:PORT

The gateway benchmark runs it beside the gateway and `bench.rsgi_floor`, in front of the same
product: its p50 at one connection ÷ direct is what a Python proxy costs once Granian's runtime
and its hand-offs to the Python loop are taken away. It is a yardstick, not a server to deploy:
it has none of the slow-client protections Granian gives the gateway (header deadlines, size
limits, worker supervision). Loopback only, as every benchmark; it stops by itself after
`--max-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections import deque

import httptools
import uvloop

from services.common.loop_transport import LoopPool

LOOPBACK = ("127.0.0.1", "localhost", "::1")
REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway"}


class ClientConnection(asyncio.Protocol):
    """One client connection: requests parsed as they come, answered one at a time, in order."""

    def __init__(self, pool: LoopPool) -> None:
        self.pool = pool
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.queue: deque[tuple[str, str, bool]] = deque()
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, b"text/plain", b"bad request\n", keep=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("ascii")
        self.queue.append((method, self.url.decode("latin-1"), self.parser.should_keep_alive()))
        self.url = b""
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._answer_queue())

    async def _answer_queue(self) -> None:
        while self.queue and self.transport is not None:
            method, target, keep = self.queue.popleft()
            try:
                reply = await self.pool.exchange(method, target, {}, None, connect_timeout=1.0,
                                                 read_timeout=5.0)
                kind = reply.headers.get("Content-Type", "application/octet-stream").encode()
                self._write(reply.status, kind, reply.data, keep)
            except Exception as exc:  # noqa: BLE001 - a yardstick answers 502 and goes on
                self._write(502, b"text/plain", f"upstream failed: {exc}\n".encode(), keep=False)
        self.busy = False

    def _write(self, status: int, kind: bytes, body: bytes, keep: bool) -> None:
        if self.transport is None:
            return
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"
                f"content-length: {len(body)}\r\n").encode() + b"content-type: " + kind + b"\r\n"
        if not keep:
            head += b"connection: close\r\n"
        self.transport.write(head + b"\r\n" + body)
        if not keep:
            self.transport.close()
            self.transport = None


async def serve(port: int, upstream: str, max_seconds: float) -> None:
    """Listen on 127.0.0.1:`port` (0: any free one, printed) for `max_seconds`."""
    host, _, upstream_port = upstream.rpartition(":")
    if host.strip("[]") not in LOOPBACK:
        raise SystemExit(f"the floor proxies to loopback only, not {upstream!r}")
    pool = LoopPool("http", host.strip("[]"), int(upstream_port), maxsize=64)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientConnection(pool), "127.0.0.1", port,
                                      backlog=1024)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await asyncio.sleep(max_seconds)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until `--max-seconds` pass or the process is stopped."""
    parser = argparse.ArgumentParser(prog="python -m bench.asyncio_floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: free)")
    parser.add_argument("--upstream", required=True, help="host:port of product, on loopback")
    parser.add_argument("--max-seconds", type=float, default=1800.0,
                        help="stop by itself after this long (default 1800)")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.port, args.upstream, args.max_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
