"""The least a Python relay can do: uvloop, one `transport.write` per read, nothing else.

    python -m bench.min_relay --upstream PORT     # prints `listening on 127.0.0.1:PORT`

The fault-proxy benchmark runs it beside HAProxy and the embedded proxy, on the same CPU and
in front of the same responder: the embedded proxy against it is what the proxy's own code
costs, and it against HAProxy is the floor of any relay written on Python and uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Early:
    """Writes made before the upstream answered (uvloop may deliver a first read anyway)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


class _Upstream(asyncio.Protocol):
    def __init__(self, client: _Client) -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        for data in self.client.upstream.chunks:  # type: ignore[union-attr]
            transport.write(data)  # type: ignore[attr-defined]
        self.client.upstream = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()  # type: ignore[union-attr]


class _Client(asyncio.Protocol):
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | _Early = _Early()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        loop.create_task(loop.create_connection(lambda: _Upstream(self), "127.0.0.1",
                                                self.upstream_port))

    def data_received(self, data: bytes) -> None:
        self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not isinstance(self.upstream, _Early):
            self.upstream.close()


async def _serve(upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(upstream_port), "127.0.0.1", 0)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    server.close()


def start_min_relay(upstream_port: int, cpu: int | None) -> tuple[subprocess.Popen, int]:
    """`python -m bench.min_relay` in front of `upstream_port`, pinned to `cpu`; process, port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.min_relay", "--upstream", str(upstream_port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    line = process.stdout.readline()  # type: ignore[union-attr]
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"the minimal relay did not start: {line!r}")
    return process, int(line.rsplit(":", 1)[1])


def main(argv: list[str] | None = None) -> int:
    """Relay 127.0.0.1:<free port> to 127.0.0.1:<upstream> until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.min_relay", description=__doc__)
    parser.add_argument("--upstream", type=int, required=True, help="port on 127.0.0.1")
    args = parser.parse_args(argv)
    from chaos.toxiproxy.server import new_event_loop

    loop = new_event_loop()
    try:
        loop.run_until_complete(_serve(args.upstream))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
