"""How the resilient client spreads load: least-outstanding against round robin.

    python -m bench.balancing [--threads 16] [--requests 60]

Two gunicorn upstreams serving `bench.responder.make_upstream` (one answering in 2 ms, one in
30 ms) on free loopback ports; the client under test is `services.common.client`'s own, driven
by threads. Prints a Markdown table: throughput, p50/p99 and the share served by the fast one.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import urllib3

from bench.anchors import free_port
from services.common.client import ResilientClient, UpstreamPolicy

ROOT = Path(__file__).resolve().parents[1]


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
    port = free_port()
    app = f"bench.responder:make_upstream(delay_ms={delay_ms}, name={name!r})"
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
    """Measure both policies and print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.balancing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--requests", type=int, default=60,
                        help="requests per thread and policy (default 60)")
    args = parser.parse_args(argv)
    print("| balancing: fast 2 ms + slow 30 ms replica "
          f"({args.threads} threads) | req/s | p50 | p99 | share on fast |")
    print("|---|---|---|---|---|")
    print("\n".join(measure_balancing(requests_per_thread=args.requests, threads=args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
