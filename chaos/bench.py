"""Benchmark of the fault proxy: proxied vs. direct throughput, and latency-toxic accuracy.

    python -m chaos.bench [--connections 32] [--seconds 3] [--latency-ms 50]

The upstream (a tiny HTTP responder) and the load generator share one process and event loop;
the proxy runs in its own process (`python -m chaos.toxiproxy`), as it would in an
experiment. On a machine with two or more CPUs the two processes are pinned to different
CPUs so that they do not compete. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import requests

REQUEST = b"GET /item/42 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"id":42,"ok":1}'
)


class Responder(asyncio.Protocol):
    """Answers every request (ended by a blank line) with the same small response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.pending = self.pending[self.pending.rindex(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


class KeepAliveClient(asyncio.Protocol):
    """Sends a request, waits for the whole response, sends the next; counts responses."""

    def __init__(self, state: _LoadState) -> None:
        self.state = state
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received >= len(RESPONSE):
            self.received -= len(RESPONSE)
            self.state.responses += 1
            if self.state.running:
                self.transport.write(REQUEST)  # type: ignore[attr-defined]


@dataclass
class _LoadState:
    responses: int = 0
    running: bool = True


async def measure_throughput(host: str, port: int, connections: int, seconds: float) -> float:
    """Responses per second over `connections` keep-alive connections for `seconds`."""
    loop = asyncio.get_running_loop()
    state = _LoadState()
    transports = []
    for _ in range(connections):
        transport, _protocol = await loop.create_connection(
            lambda: KeepAliveClient(state), host, port
        )
        transports.append(transport)
    await asyncio.sleep(min(0.5, seconds / 4))  # warm up
    start_count, start = state.responses, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (state.responses - start_count) / (time.perf_counter() - start)
    state.running = False
    for transport in transports:
        transport.close()
    return rate


async def measure_rtt(host: str, port: int, samples: int) -> list[float]:
    """Round-trip times in ms of `samples` sequential requests on one connection."""
    reader, writer = await asyncio.open_connection(host, port)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        writer.write(REQUEST)
        await reader.readexactly(len(RESPONSE))
        times.append((time.perf_counter() - start) * 1000)
    writer.close()
    return times


def _start_proxy_server(cpu: int | None) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos.toxiproxy", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    line = process.stdout.readline()  # type: ignore[union-attr]
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"proxy server did not start: {line!r}")
    return process, "http://" + line.rsplit(" ", 1)[1].strip()


async def _bench(connections: int, seconds: float, latency_ms: int, url: str) -> dict:
    loop = asyncio.get_running_loop()
    upstream = await loop.create_server(Responder, "127.0.0.1", 0)
    up_port = upstream.sockets[0].getsockname()[1]
    proxy = requests.post(
        f"{url}/proxies",
        json={"name": "bench", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{up_port}"},
        timeout=5,
    ).json()
    px_host, px_port = proxy["listen"].rsplit(":", 1)
    results: dict = {}
    # Alternate direct and proxied runs, so drift on a busy machine hits both alike.
    direct, proxied = [], []
    for _ in range(3):
        direct.append(await measure_throughput("127.0.0.1", up_port, connections, seconds))
        proxied.append(await measure_throughput(px_host, int(px_port), connections, seconds))
    # Best of each: capacity, with the machine's noise (other processes, the VM) filtered out.
    results["direct_rps"] = max(direct)
    results["proxied_rps"] = max(proxied)
    results["throughput_ratio"] = results["proxied_rps"] / results["direct_rps"]

    base = await measure_rtt(px_host, int(px_port), 200)
    requests.post(
        f"{url}/proxies/bench/toxics",
        json={"type": "latency", "attributes": {"latency": latency_ms}},
        timeout=5,
    )
    with_latency = await measure_rtt(px_host, int(px_port), max(10, int(2000 / latency_ms)))
    added = [t - statistics.median(base) for t in with_latency]
    results["rtt_no_toxic_ms_p50"] = statistics.median(base)
    results["latency_target_ms"] = latency_ms
    results["latency_added_ms_p50"] = statistics.median(added)
    results["latency_added_ms_max"] = max(added)
    results["latency_error_ms_p50"] = statistics.median(added) - latency_ms
    upstream.close()
    return results


def run_benchmark(connections: int = 32, seconds: float = 3.0, latency_ms: int = 50) -> dict:
    """Run the whole benchmark in a fresh loop and proxy process; returns the figures."""
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    process, url = _start_proxy_server(cpus[1] if pinned else None)
    own_affinity = os.sched_getaffinity(0)
    try:
        if pinned:
            os.sched_setaffinity(0, {cpus[0]})
        from chaos.toxiproxy.server import new_event_loop

        loop = new_event_loop()
        try:
            results = loop.run_until_complete(_bench(connections, seconds, latency_ms, url))
        finally:
            loop.close()
    finally:
        os.sched_setaffinity(0, own_affinity)
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    results["pinned"] = pinned
    results["connections"] = connections
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.bench", description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args(argv)
    results = run_benchmark(args.connections, args.seconds, args.latency_ms)
    print(f"connections        {results['connections']} (processes pinned: {results['pinned']})")
    print(f"direct             {results['direct_rps']:>10.0f} req/s")
    print(f"through the proxy  {results['proxied_rps']:>10.0f} req/s")
    print(f"throughput ratio   {results['throughput_ratio']:>10.3f}")
    print(f"rtt, no toxic      {results['rtt_no_toxic_ms_p50']:>10.3f} ms (p50)")
    print(
        f"latency toxic      {results['latency_target_ms']} ms asked, "
        f"{results['latency_added_ms_p50']:.2f} ms added (p50), "
        f"{results['latency_added_ms_max']:.2f} ms max, "
        f"error {results['latency_error_ms_p50']:+.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
