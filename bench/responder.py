"""Fixed-size HTTP responders: the upstreams whose cost is as close to nothing as possible.

- `Responder`: an asyncio protocol answering every request (ended by a blank line) with the
  same 16-byte JSON body; `python -m bench.responder` serves it in its own process and prints
  `listening on 127.0.0.1:PORT`, so it can be pinned to a CPU and driven by wrk.
- `make_upstream(delay_ms)`: the same idea as a WSGI app, for gunicorn
  (`gunicorn 'bench.responder:make_upstream(delay_ms=2)'`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"id":42,"ok":1}'
)
ROOT = Path(__file__).resolve().parents[1]


class Responder(asyncio.Protocol):
    """Answers every request (ended by a blank line) with the same small response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.pending = self.pending[self.pending.rindex(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


def make_upstream(delay_ms: float = 0.0, name: str = "upstream") -> Callable[..., Iterable[bytes]]:
    """A minimal WSGI upstream answering a small JSON body after `delay_ms`."""
    body = json.dumps(
        {"items": [{"id": i, "name": f"product {i}"} for i in range(5)], "by": name}
    ).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if delay_ms:
            time.sleep(delay_ms / 1000)
        start_response("200 OK", headers)
        return [body]

    return app


def start_responder(cpu: int | None = None) -> tuple[subprocess.Popen, int]:
    """`python -m bench.responder` on a free loopback port (pinned to `cpu`); process and port."""
    process = subprocess.Popen([sys.executable, "-m", "bench.responder"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    line = process.stdout.readline()  # type: ignore[union-attr]
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"the responder did not start: {line!r}")
    return process, int(line.rsplit(":", 1)[1])


def stop(process: subprocess.Popen) -> None:
    """Stop a process this module started, waiting for it."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    if process.poll() is None:
        process.kill()
        process.wait(5)


def main(argv: list[str] | None = None) -> int:
    """Serve the fixed response on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.responder", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    args = parser.parse_args(argv)
    from chaos.toxiproxy.server import new_event_loop

    loop = new_event_loop()
    server = loop.run_until_complete(loop.create_server(Responder, "127.0.0.1", args.port))
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    loop.run_until_complete(stopped.wait())
    server.close()
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
