"""What each upstream transport costs the gateway: CPU per exchange, in-process.

    python -m bench.transport [--requests 3000] [--out FILE]

Against `bench.responder` (its own process, pinned to the other CPU when there are two), one
keep-alive connection, one request at a time, each transport sends the same GET with the
headers the gateway forwards and reads the whole answer:

- `breakwater`: `services.common.transport.KeepAlivePool.exchange`, the resilient client's
  transport, with an armed and disarmed deadline watch as the client uses it;
- `urllib3`: `HTTPConnectionPool.urlopen` as `services.common.client` called it before
  (no retries, no preload, `.data`, `release_conn`);
- `http.client`: the standard library connection urllib3 sits on, without urllib3;
- `httptools`: a raw socket with httptools' C parser (when httptools is installed);
- `bare`: a raw socket parsing the status line and Content-Length with bytes methods only —
  the floor for any Python transport.

CPU per exchange comes from `time.process_time()` (this process only: the responder's work is
not counted). The differences to `urllib3` are what the transport saves per proxied request;
the distance from `breakwater` to `httptools` is what its semantics cost (the watch, the
check before reusing an idle connection, urllib3's error types, decoded headers).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PATH = "/api/v1/products/product-7"
HEADERS = {"accept": "application/json", "user-agent": "wrk", "x-request-id": "0" * 32,
           "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http",
           "x-breakwater-deadline-ms": "1500", "host": "127.0.0.1"}


def _urllib3(port: int) -> Callable[[], int]:
    import urllib3
    from urllib3.util.retry import Retry

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
    retries, timeout = Retry.from_int(False, redirect=False), urllib3.Timeout(connect=1, read=2)

    def exchange() -> int:
        raw = pool.urlopen("GET", PATH, headers=urllib3.HTTPHeaderDict(HEADERS), timeout=timeout,
                           retries=retries, redirect=False, assert_same_host=False,
                           preload_content=False)
        data = raw.data
        raw.release_conn()
        return len(data)

    return exchange


def _http_client(port: int) -> Callable[[], int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)

    def exchange() -> int:
        connection.request("GET", PATH, headers=HEADERS)
        return len(connection.getresponse().read())

    return exchange


def _request_bytes() -> bytes:
    lines = [f"GET {PATH} HTTP/1.1", *(f"{k}: {v}" for k, v in HEADERS.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _httptools(port: int) -> Callable[[], int] | None:
    try:
        import httptools
    except ImportError:
        return None
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    request = _request_bytes()

    class Answer:
        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []
            self.body: list[bytes] = []
            self.done = False

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            self.done = True

    def exchange() -> int:
        answer = Answer()
        parser = httptools.HttpResponseParser(answer)
        sock.sendall(request)
        while not answer.done:
            parser.feed_data(sock.recv(65536))
        parser.get_status_code()
        return len(b"".join(answer.body))

    return exchange


def _bare(port: int) -> Callable[[], int]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    request = _request_bytes()

    def exchange() -> int:
        sock.sendall(request)
        buffer = b""
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += sock.recv(65536)
        head = buffer[:end].split(b"\r\n")
        int(head[0].split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head[1:]
                      if line[:15].lower() == b"content-length:")
        body = buffer[end + 4:]
        while len(body) < length:
            body += sock.recv(65536)
        return len(body)

    return exchange


def _breakwater(port: int) -> Callable[[], int]:
    from services.common.transport import KeepAlivePool
    from services.common.watchdog import Watch

    pool = KeepAlivePool("http", "127.0.0.1", port, maxsize=1)
    headers = {k: v for k, v in HEADERS.items() if k != "host"}

    def exchange() -> int:
        now = time.monotonic()
        reply = pool.exchange("GET", PATH, headers, None, connect_timeout=1, read_timeout=2,
                              watch=Watch(2.0, now + 2.0, now + 2.0))
        return len(reply.data)

    return exchange


TRANSPORTS = {"breakwater": _breakwater, "urllib3": _urllib3, "http.client": _http_client, "httptools": _httptools,
              "bare": _bare}


def measure(port: int, count: int, rounds: int = 3) -> dict[str, Any]:
    """CPU and wall time per exchange of every transport, rounds interleaved; medians."""
    exchanges = {name: make(port) for name, make in TRANSPORTS.items()}
    available = {name: fn for name, fn in exchanges.items() if fn is not None}
    for fn in available.values():  # warm: connections, imports, caches
        for _ in range(200):
            fn()
    cpu: dict[str, list[float]] = {name: [] for name in available}
    wall: dict[str, list[float]] = {name: [] for name in available}
    for _ in range(rounds):
        for name, fn in available.items():
            began, spent = time.perf_counter(), time.process_time()
            for _ in range(count):
                fn()
            cpu[name].append((time.process_time() - spent) * 1000 / count)
            wall[name].append((time.perf_counter() - began) * 1000 / count)
    median = {name: sorted(values)[len(values) // 2] for name, values in cpu.items()}
    base = median["urllib3"]
    return {"requests_per_round": count, "rounds": rounds,
            "missing": sorted(set(TRANSPORTS) - set(available)),
            "cpu_ms_per_exchange": {k: round(v, 4) for k, v in median.items()},
            "wall_ms_per_exchange": {k: round(sorted(v)[len(v) // 2], 4) for k, v in wall.items()},
            "cpu_saved_vs_urllib3_ms": {k: round(base - v, 4) for k, v in median.items()
                                        if k != "urllib3"}}


def main(argv: list[str] | None = None) -> int:
    """Start the responder, measure, print (and write) the JSON."""
    from bench.common import cpu_layout
    from bench.responder import start_responder, stop

    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    responder, port = start_responder(layout["load"])
    try:
        if layout["server"] is not None:
            os.sched_setaffinity(0, {layout["server"]})
        result = measure(port, max(1, min(args.requests, 20000)))
    finally:
        stop(responder)
    result["loadavg_1min"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
