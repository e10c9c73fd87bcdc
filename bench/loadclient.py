"""The benchmarks' own HTTP/1.1 client, for what wrk cannot do: one keep-alive connection per
target, one request at a time, several targets interleaved (A/B at one connection, so drift on a
busy host lands on every target alike), every latency kept. Throughput windows use wrk
(`bench.wrk`). asyncio (uvloop when installed); loopback only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import percentile

NAME = "bench.loadclient (asyncio keep-alive HTTP/1.1, one request at a time)"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_HEADER_BYTES = 64 * 1024


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
    if host not in LOOPBACK:
        raise ValueError(f"the load client only drives 127.0.0.1, not {host!r}")
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
