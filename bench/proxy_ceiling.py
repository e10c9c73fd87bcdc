"""The fault proxy's relay beside HAProxy: the same responder, the same wrk windows, one core.

Per repetition, wrk windows against four targets: the responder direct, through HAProxy in
TCP mode, through the least relay Python can be (`bench.min_relay`) and through the embedded
proxy with no toxics, cut into one-second slices taken in turn (ABCDABCD, the order rotating
per repetition) so that drift on a shared host hits each alike. The relays are pinned to the
server CPU (one at a time is busy); the responder and wrk share the other. A relay's ceiling
on its core is the requests it relays per CPU-second it uses: the rate it would reach with
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
TARGETS = ("direct", "haproxy", "minimal", "proxied")


def round_trips(port: int, samples: int) -> list[float]:
    """Round trips (ms) of `samples` sequential requests on one keep-alive connection."""
    result = loadclient.run(loadclient.sequential("127.0.0.1", port, PATH, count=samples,
                                                  max_seconds=60))
    return result.samples


class Window:
    """One target's slices of a repetition: requests, seconds and the relay's CPU, summed."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.parts: list = []
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def slice(self, port: int, connections: int, seconds: float) -> None:
        """One wrk slice; with a relay `pid`, the CPU it used during it."""
        cpu, wall = (cpu_seconds(self.pid) if self.pid else 0.0), time.monotonic()
        self.parts.append(run_wrk(port, PATH, connections=connections, seconds=seconds))
        self.wall_s += time.monotonic() - wall
        if self.pid:
            self.cpu_s += cpu_seconds(self.pid) - cpu

    def figures(self) -> dict[str, float | None]:
        """Rate, latency, the relay's CPU share and its ceiling (requests per CPU-second)."""
        merged = loadclient.merge(self.parts)
        busy = self.cpu_s / self.wall_s if self.pid and self.wall_s else None
        ceiling = merged.requests / self.cpu_s if self.pid and self.cpu_s else None
        return {"rps": merged.rps, "requests": merged.requests, "p50_ms": merged.p50_ms,
                "p99_ms": merged.p99_ms, "errors": merged.errors, "cpu": busy,
                "ceiling_rps": ceiling}


def measure(ctx: Context, ports: dict[str, int], pids: dict[str, int]) -> list[dict[str, Any]]:
    """Every repetition's windows and one-connection round trips, keyed by target."""
    settings = ctx.settings
    slices = max(1, round(settings.proxy_seconds))
    reps: list[dict[str, Any]] = []
    for rep in range(settings.reps):
        turn = rep % len(TARGETS)
        order = TARGETS[turn:] + TARGETS[:turn]
        windows = {which: Window(pids.get(which)) for which in TARGETS}
        for _ in range(slices):
            for which in order:
                windows[which].slice(ports[which], settings.proxy_connections,
                                     settings.proxy_seconds / slices)
        figures: dict[str, Any] = {"order": list(order), "slices": slices}
        for which in TARGETS:
            figures[which] = windows[which].figures()
            figures[which]["rtt_p50_ms"] = statistics.median(
                round_trips(ports[which], RTT_SAMPLES))
        reps.append(figures)
        ctx.log(f"  rep {rep + 1}/{settings.reps} req/s direct "
                f"{figures['direct']['rps']:.0f}, haproxy {figures['haproxy']['rps']:.0f} "
                f"(ceiling {_k(figures['haproxy']['ceiling_rps'])}), minimal relay "
                f"{figures['minimal']['rps']:.0f} (ceiling "
                f"{_k(figures['minimal']['ceiling_rps'])}), proxy "
                f"{figures['proxied']['rps']:.0f} (ceiling "
                f"{_k(figures['proxied']['ceiling_rps'])}); 1-connection p50 "
                + " / ".join(f"{figures[w]['rtt_p50_ms']:.3f}" for w in TARGETS) + " ms")
    return reps


def _k(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:.1f}k"
