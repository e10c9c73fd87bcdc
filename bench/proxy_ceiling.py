"""The fault proxy's relay beside HAProxy: the same responder, the same wrk windows, one core each.

Per repetition, three wrk windows in a rotating order: the responder direct, through HAProxy in
TCP mode, and through the embedded proxy with no toxics. Both relays are pinned to the server
CPU (one at a time is busy); the responder and wrk share the other. A relay's ceiling on its
core is the requests it relays per CPU-second it uses: that is the rate it would reach with
the core to itself, whatever the load side could send. Then one-connection round trips
through each.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import loadclient
from bench.common import Context
from bench.harness import cpu_seconds
from bench.wrk import run_wrk

RTT_SAMPLES = 300
PATH = "/item/42"
TARGETS = ("direct", "haproxy", "proxied")


def round_trips(port: int, samples: int) -> list[float]:
    """Round trips (ms) of `samples` sequential requests on one keep-alive connection."""
    result = loadclient.run(loadclient.sequential("127.0.0.1", port, PATH, count=samples,
                                                  max_seconds=60))
    return result.samples


def _window(port: int, pid: int | None, ctx: Context) -> dict[str, float | None]:
    """One wrk window; with `pid`, also the CPU share that process used during it."""
    settings = ctx.settings
    cpu, wall = (cpu_seconds(pid) if pid else 0.0), time.monotonic()
    result = run_wrk(port, PATH, connections=settings.proxy_connections,
                     seconds=settings.proxy_seconds)
    busy = (cpu_seconds(pid) - cpu) / (time.monotonic() - wall) if pid else None
    ceiling = result.rps / busy if busy else None
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "errors": result.errors, "cpu": busy, "ceiling_rps": ceiling}


def measure(ctx: Context, ports: dict[str, int], pids: dict[str, int]) -> list[dict[str, Any]]:
    """Every repetition's windows and one-connection round trips, keyed by target."""
    reps: list[dict[str, Any]] = []
    for rep in range(ctx.settings.reps):
        order = TARGETS[rep % 3:] + TARGETS[:rep % 3]  # drift lands on each in turn
        figures: dict[str, Any] = {"order": list(order)}
        for which in order:
            figures[which] = _window(ports[which], pids.get(which), ctx)
        for which in TARGETS:
            figures[which]["rtt_p50_ms"] = statistics.median(
                round_trips(ports[which], RTT_SAMPLES))
        reps.append(figures)
        ctx.log(f"  rep {rep + 1}/{ctx.settings.reps} req/s direct "
                f"{figures['direct']['rps']:.0f}, haproxy {figures['haproxy']['rps']:.0f} "
                f"(ceiling {_k(figures['haproxy']['ceiling_rps'])}), proxy "
                f"{figures['proxied']['rps']:.0f} (ceiling "
                f"{_k(figures['proxied']['ceiling_rps'])}); 1-connection p50 "
                f"{figures['direct']['rtt_p50_ms']:.3f} / {figures['haproxy']['rtt_p50_ms']:.3f}"
                f" / {figures['proxied']['rtt_p50_ms']:.3f} ms")
    return reps


def _k(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:.1f}k"
