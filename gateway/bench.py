"""Measure the gateway: its added cost over a direct call, and least-outstanding vs round robin.

`python -m gateway.bench` starts tiny upstreams and the gateway under gunicorn on free loopback
ports, drives them with wrk (apt-get install wrk) and prints a Markdown table. A measurement
script, not a test: numbers depend on the machine (2 shared cores here; nothing is pinned).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import urllib3

from services.common.client import ResilientClient, UpstreamPolicy

ROOT = Path(__file__).resolve().parents[1]


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str] | None, url: str) -> subprocess.Popen:
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    http = urllib3.PoolManager()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if http.request("GET", url, timeout=1, retries=False).status < 500:
                return process
        except urllib3.exceptions.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{args} did not come up")


def start_upstream(
    delay_ms: float = 0.0, name: str = "upstream", threads: int = 8
) -> tuple[subprocess.Popen, str]:
    """A gunicorn gthread upstream (1 worker) on a free port, and its base URL."""
    port = _free_port()
    app = f"gateway.bench:make_upstream(delay_ms={delay_ms}, name={name!r})"
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-k",
        "gthread",
        "-w",
        "1",
        "--threads",
        str(threads),
        "--keep-alive",
        "75",
        app,
    ]
    url = f"http://127.0.0.1:{port}"
    return _start(args, None, url + "/"), url


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    """Requests per second and latency percentiles from a wrk run."""
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    percentiles = dict(re.findall(r"\s(50|99)%\s+([\d.]+\w+)", out))
    return {"rps": rps, "p50": percentiles.get("50", "?"), "p99": percentiles.get("99", "?")}


def measure_overhead(seconds: int, connections: int) -> list[str]:
    """Direct upstream vs through the gateway (gunicorn gthread, 1 worker)."""
    upstream, url = start_upstream(threads=16)
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_UPSTREAM_PRODUCT": url,
        "GATEWAY_THREADS": "64",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    gateway = _start(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gateway/gunicorn_conf.py",
            "gateway:create_app()",
        ],
        env,
        f"http://127.0.0.1:{port}/healthz",
    )
    try:
        direct = wrk(url + "/api/v1/products", connections, seconds)
        proxied = wrk(f"http://127.0.0.1:{port}/api/v1/products", connections, seconds)
    finally:
        for process in (gateway, upstream):
            process.terminate()
            process.wait(10)
    return [
        f"| direct upstream | {direct['rps']:.0f} | {direct['p50']} | {direct['p99']} |",
        f"| through gateway | {proxied['rps']:.0f} ({proxied['rps'] / direct['rps']:.2f}×) "
        f"| {proxied['p50']} | {proxied['p99']} |",
    ]


def _round_robin(client: ResilientClient) -> None:
    # Measurement only: the client's unprotected choice is plain round robin.
    for upstream in client.upstreams.values():
        least_outstanding = upstream.choose

        def choose(
            exclude: Iterable[Any] = (), protected: bool = True, _c: Any = least_outstanding
        ) -> Any:
            return _c(exclude, protected=False)

        upstream.choose = choose  # type: ignore[method-assign]


def _drive(
    client: ResilientClient, threads: int, per_thread: int
) -> tuple[list[float], Counter, float]:
    """Latencies, requests served per replica and elapsed seconds of a closed-loop run."""
    latencies: list[float] = []
    served: Counter = Counter()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(per_thread):
            started = time.perf_counter()
            response = client.request("product", "GET", "/api/v1/products")
            with lock:
                latencies.append(time.perf_counter() - started)
                served[response.instance] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sorted(latencies), served, time.perf_counter() - started


def measure_balancing(requests_per_thread: int, threads: int) -> list[str]:
    """One fast and one slow replica: how least-outstanding and round robin spread the load."""
    fast, fast_url = start_upstream(2, "fast", threads=32)
    slow, slow_url = start_upstream(30, "slow", threads=32)
    rows = []
    try:
        for policy in ("least-outstanding", "round-robin"):
            client = ResilientClient()
            policy_settings = UpstreamPolicy(max_concurrent=64, pool_maxsize=64)
            client.add_upstream("product", [fast_url, slow_url], policy_settings)
            if policy == "round-robin":
                _round_robin(client)
            latencies, served, elapsed = _drive(client, threads, requests_per_thread)
            share = served[fast_url] / sum(served.values())
            p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99)]
            rows.append(
                f"| {policy} | {len(latencies) / elapsed:.0f} | {p50 * 1000:.1f} ms "
                f"| {p99 * 1000:.1f} ms | {share:.0%} |"
            )
            client.close()
    finally:
        for process in (fast, slow):
            process.terminate()
            process.wait(10)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print Markdown tables."""
    parser = argparse.ArgumentParser(prog="python -m gateway.bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_overhead:
        print("| path | req/s | p50 | p99 |\n|---|---|---|---|")
        print("\n".join(measure_overhead(args.seconds, args.connections)))
    print(
        "\n| balancing: fast 2 ms + slow 30 ms replica, 16 threads "
        "| req/s | p50 | p99 | share on fast |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(measure_balancing(requests_per_thread=60, threads=16)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
