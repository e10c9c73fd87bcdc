"""A small, efficient HTTP/1.1 load generator on asyncio (uvloop when installed).

Used because wrk is not installed here. It is a generalisation of the fixed-size client in
`chaos/bench.py`: keep-alive connections, each sending its next request as soon as the
previous response is complete (closed loop), parsing real responses (Content-Length or
chunked bodies). Every request's latency is recorded. One Python process drives ~15-20k
req/s on one core, far more than any Breakwater process serves, so it is not the bottleneck.

Loopback only: `host` must be 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import percentile

NAME = "bench.loadgen (asyncio/uvloop keep-alive HTTP/1.1, closed loop)"
WRK_NAME = "wrk (closed loop; 1-connection latency by bench.loadgen)"
MAX_HEADER_BYTES = 64 * 1024


@dataclass
class _Window:
    """What the connections of one run share: the clock window and what was measured."""

    start: float
    end: float
    running: bool = True
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class _Response:
    """An incremental parser of one HTTP/1.1 response."""

    def __init__(self) -> None:
        self.buffer = b""
        self.status = 0
        self.remaining: int | None = None  # body bytes still due (Content-Length)
        self.chunked = False
        self.headers_done = False

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once the whole response has arrived (leftover bytes kept)."""
        self.buffer += data
        if not self.headers_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    raise ValueError("response headers too large")
                return False
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            lines = head.split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    self.chunked = True
            self.remaining = None if self.chunked else length
            self.headers_done = True
        if self.chunked:
            return self._chunks_done()
        assert self.remaining is not None
        if len(self.buffer) >= self.remaining:
            self.buffer = self.buffer[self.remaining:]
            return True
        return False

    def _chunks_done(self) -> bool:
        position = 0
        while True:
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return False
            size = int(self.buffer[position:line_end].split(b";")[0], 16)
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0 and self.buffer[line_end:line_end + 4] != b"\r\n\r\n":
                    return False
                self.buffer = self.buffer[(trailer_end if trailer_end >= 0 else line_end) + 4:]
                return True
            position = line_end + 2 + size + 2
            if position > len(self.buffer):
                return False

    def reset(self) -> None:
        """Start on the next response (keeping leftover bytes)."""
        leftover = self.buffer
        self.__init__()  # type: ignore[misc]
        self.buffer = leftover


class _Connection(asyncio.Protocol):
    """One keep-alive connection of a closed-loop run."""

    def __init__(self, request: bytes, window: _Window, done: asyncio.Future[None]) -> None:
        self.request, self.window, self.done = request, window, done
        self.response = _Response()
        self.sent = 0.0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            complete = self.response.feed(data)
        except ValueError:
            self.window.errors += 1
            self.transport.close()
            return
        while complete:
            now = time.perf_counter()
            window = self.window
            if window.start <= self.sent and now <= window.end:
                window.latencies.append((now - self.sent) * 1000.0)
                status = self.response.status
                window.statuses[status] = window.statuses.get(status, 0) + 1
                if 200 <= status < 400:
                    window.ok += 1
                else:
                    window.errors += 1
            self.response.reset()
            if not window.running or now > window.end:
                self.transport.close()
                return
            self._send()
            complete = bool(self.response.buffer) and self.response.feed(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.window.running and time.perf_counter() < self.window.end:
            self.window.errors += 1  # the server closed a keep-alive connection mid-run
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class LoadResult:
    """What a run measured: rate of answered requests and latency percentiles (ms)."""

    connections: int
    seconds: float
    requests: int
    ok: int
    errors: int
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    statuses: dict[int, int]
    samples: list[float] = field(default_factory=list, repr=False)  # latencies (ms), sorted

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON results."""
        return {"connections": self.connections, "seconds": round(self.seconds, 3),
                "requests": self.requests, "ok": self.ok, "errors": self.errors,
                "rps": round(self.rps, 1), "p50_ms": _r(self.p50_ms),
                "p90_ms": _r(self.p90_ms), "p99_ms": _r(self.p99_ms),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def build_request(host: str, port: int, path: str,
                  headers: dict[str, str] | None = None) -> bytes:
    """A keep-alive GET of `path` (with extra `headers`) as raw bytes."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: breakwater-bench\r\n"
            f"Accept: application/json\r\n{extra}\r\n").encode()


async def closed_loop(host: str, port: int, path: str, *, connections: int, seconds: float,
                      warmup: float = 0.5) -> LoadResult:
    """`connections` keep-alive connections hammering `path` for `warmup` + `seconds`."""
    if host != "127.0.0.1":
        raise ValueError(f"the load generator only drives 127.0.0.1, not {host!r}")
    loop = asyncio.get_running_loop()
    begin = time.perf_counter()
    window = _Window(start=begin + warmup, end=begin + warmup + seconds)
    request = build_request(host, port, path)
    finished = []
    transports = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        finished.append(done)
        transport, _ = await loop.create_connection(
            lambda d=done: _Connection(request, window, d), host, port)  # type: ignore[misc]
        transports.append(transport)
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    window.running = False
    # Connections close on their next answer; give slow ones a bounded moment, then force.
    _, pending = await asyncio.wait(finished, timeout=2.0)
    for transport in transports:
        transport.close()
    del pending
    latencies = sorted(window.latencies)
    return LoadResult(connections, seconds, len(latencies), window.ok, window.errors,
                      len(latencies) / seconds, percentile(latencies, 50),
                      percentile(latencies, 90), percentile(latencies, 99), window.statuses,
                      latencies)


def merge(results: list[LoadResult]) -> LoadResult:
    """Several windows against the same target as one: summed counts, pooled latencies."""
    if not results:
        raise ValueError("nothing to merge")
    seconds = sum(r.seconds for r in results)
    latencies = sorted(x for r in results for x in r.samples)
    statuses: dict[int, int] = {}
    for r in results:
        for status, count in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    requests = sum(r.requests for r in results)
    if latencies:
        p50, p90, p99 = (percentile(latencies, q) for q in (50, 90, 99))
    else:  # wrk gives percentiles only: the median of the windows' own
        p50, p90, p99 = (_median_of([getattr(r, f"p{q}_ms") for r in results])
                         for q in (50, 90, 99))
    return LoadResult(results[0].connections, seconds, requests, sum(r.ok for r in results),
                      sum(r.errors for r in results), requests / seconds if seconds else 0.0,
                      p50, p90, p99, statuses, latencies)


def _median_of(values: list[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    return present[len(present) // 2] if present else None


class _OneByOne:
    """One keep-alive connection sending one request at a time, timing each."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port, self.request = port, request
        self.parser = _Response()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.ok = self.errors = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def one(self, record: bool) -> None:
        """Send one request and wait for its whole answer."""
        assert self.reader is not None and self.writer is not None
        sent = time.perf_counter()
        self.writer.write(self.request)
        complete = self.parser.feed(b"") if self.parser.buffer else False
        while not complete:
            data = await asyncio.wait_for(self.reader.read(65536), timeout=5.0)
            if not data:
                raise ConnectionError(f"127.0.0.1:{self.port} closed the connection")
            complete = self.parser.feed(data)
        if record:
            self.latencies.append((time.perf_counter() - sent) * 1000.0)
            status = self.parser.status
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if 200 <= status < 400:
                self.ok += 1
            else:
                self.errors += 1
        self.parser.reset()

    def result(self, elapsed: float) -> LoadResult:
        ordered = sorted(self.latencies)
        return LoadResult(1, elapsed, len(ordered), self.ok, self.errors,
                          len(ordered) / max(elapsed, 1e-9), percentile(ordered, 50),
                          percentile(ordered, 90), percentile(ordered, 99), self.statuses,
                          ordered)


async def interleaved(ports: list[int], path: str, *, count: int, max_seconds: float = 10.0,
                      headers: dict[str, str] | None = None) -> list[LoadResult]:
    """One connection per port; one request at a time, taking the ports in turn, `count`
    each: low-concurrency latency where drift on a busy host hits every port alike."""
    clients = [_OneByOne(port, build_request("127.0.0.1", port, path, headers))
               for port in ports]
    began = time.perf_counter()
    deadline = began + max_seconds
    try:
        for client in clients:
            await client.open()
        for index in range(count + 5):  # the first 5 warm connections and caches up
            if time.perf_counter() > deadline:
                break
            for client in clients:
                await client.one(record=index >= 5)
    finally:
        for client in clients:
            if client.writer is not None:
                client.writer.close()
    elapsed = time.perf_counter() - began
    return [client.result(elapsed) for client in clients]


async def sequential(host: str, port: int, path: str, *, count: int, max_seconds: float = 5.0,
                     headers: dict[str, str] | None = None) -> LoadResult:
    """`count` requests one after another on one connection (low-concurrency latency)."""
    if host != "127.0.0.1":
        raise ValueError(f"the load generator only drives 127.0.0.1, not {host!r}")
    results = await interleaved([port], path, count=count, max_seconds=max_seconds,
                                headers=headers)
    return results[0]


def run(coro: Any) -> Any:
    """Run one coroutine to completion in a fresh (uvloop) event loop."""
    from chaos.toxiproxy.server import new_event_loop

    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# -- wrk, when installed -----------------------------------------------------------------------

def wrk_installed() -> bool:
    """Whether `wrk` is on PATH (then closed-loop windows use it)."""
    return shutil.which("wrk") is not None


def generator_name() -> str:
    """The closed-loop load generator this machine uses."""
    return WRK_NAME if wrk_installed() else NAME


def to_ms(text: str) -> float | None:
    """wrk's `635.00us` / `1.23ms` / `2.01s` / `1.5m` as milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not found:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[found.group(2)]
    return float(found.group(1)) * scale


def wrk_closed_loop(port: int, path: str, *, connections: int, seconds: float) -> LoadResult:
    """A wrk run (whole seconds, at least 1) reusing gateway/bench.py's runner and parser."""
    from gateway.bench import wrk

    whole = max(1, round(seconds))
    figures = wrk(f"http://127.0.0.1:{port}{path}", connections, whole)
    return LoadResult(connections, whole, round(figures["rps"] * whole), round(figures["rps"]
                      * whole), 0, figures["rps"], to_ms(str(figures["p50"])), None,
                      to_ms(str(figures["p99"])), {})


def closed(port: int, path: str, *, connections: int, seconds: float,
           warmup: float = 0.5) -> LoadResult:
    """A closed-loop window on 127.0.0.1:port: wrk when installed, else `closed_loop`."""
    if wrk_installed():
        return wrk_closed_loop(port, path, connections=connections, seconds=seconds)
    return run(closed_loop("127.0.0.1", port, path, connections=connections, seconds=seconds,
                           warmup=warmup))
