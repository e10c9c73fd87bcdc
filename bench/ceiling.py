"""Benchmark: the gateway's own ceiling on one core beside nginx's, in front of a trivial upstream.

Product's own cost hides the gateway's in the end-to-end figures; here both proxies relay to
`bench.responder` (a fixed 16-byte answer, next to no CPU), each pinned alone to the server
CPU, while the responder and wrk share the other. wrk windows at 16 connections are cut into
one-second slices taken in turn (the order rotating per repetition). A proxy rarely fills its
core when the load side is the limit, so the figure that compares them is requests relayed per
CPU-second the proxy used (its ceiling on one core), from /proc; then p50 at one connection,
the two interleaved request by request.
"""

from __future__ import annotations

import time
from typing import Any

from bench import loadclient
from bench.common import Context, cpu_layout, pinned_to
from bench.harness import Harness, cpu_seconds
from bench.stats import BenchResult, Target, median, paired_ratios
from bench.wrk import NAME as WRK
from bench.wrk import run_wrk

NAME = "ceiling"
TITLE = "Gateway ceiling on one core beside nginx (trivial upstream)"
PATH = "/api/v1/products/product-7"
TARGETS = ("gateway", "nginx")
SEQUENTIAL = 300


def ceilings(requests: int, cpu_s: float) -> float | None:
    """Requests relayed per CPU-second (None when no CPU was measured)."""
    return requests / cpu_s if cpu_s > 0 else None


def _window(port: int, pid: int, connections: int, seconds: float) -> tuple[Any, float, float]:
    cpu, wall = cpu_seconds(pid), time.monotonic()
    result = run_wrk(port, PATH, connections=connections, seconds=seconds)
    return result, cpu_seconds(pid) - cpu, time.monotonic() - wall


def measure(ctx: Context) -> dict[str, Any]:
    """Start the responder, a gateway and nginx in front of it; every repetition's figures."""
    from bench.nginx import start_nginx
    from bench.responder import start_responder
    from bench.responder import stop as stop_responder

    layout = cpu_layout()
    harness = Harness(ctx.work / "ceiling", log=ctx.log)
    responder, upstream = start_responder(layout["load"])
    settings = ctx.settings
    result: dict[str, Any] = {"path": PATH, "connections": settings.micro_connections,
                              "cpu_layout": layout, "reps": []}
    try:
        gateway = harness.start_gateway("gateway-ceiling", f"http://127.0.0.1:{upstream}",
                                        cpu=layout["server"])
        nginx, nginx_port = start_nginx(upstream, layout["server"], harness.var / "nginx")
        harness.extra.append(nginx)
        ports = {"gateway": int(gateway.url.rsplit(":", 1)[1]), "nginx": nginx_port}
        pids = {"gateway": gateway.pid, "nginx": nginx.pid}
        ctx.log(f"  gateway and nginx on CPU {layout['server']} in front of the responder "
                f"(port {upstream}); wrk and the responder on CPU {layout['load']}")
        with pinned_to(layout["load"]):
            for which in TARGETS:  # warm: connections, caches, threads
                run_wrk(ports[which], PATH, connections=settings.micro_connections, seconds=1)
            slices = max(1, round(settings.micro_seconds))
            for rep in range(settings.reps):
                order = TARGETS[rep % 2:] + TARGETS[:rep % 2]
                parts: dict[str, list[Any]] = {w: [] for w in TARGETS}
                for _ in range(slices):
                    for which in order:
                        parts[which].append(_window(ports[which], pids[which],
                                                    settings.micro_connections,
                                                    settings.micro_seconds / slices))
                seq = loadclient.run(loadclient.interleaved([ports[w] for w in TARGETS], PATH,
                                                            count=SEQUENTIAL, max_seconds=30))
                figures: dict[str, Any] = {"order": list(order)}
                for which, one in zip(TARGETS, seq, strict=True):
                    merged = loadclient.merge([p[0] for p in parts[which]])
                    cpu = sum(p[1] for p in parts[which])
                    wall = sum(p[2] for p in parts[which])
                    figures[which] = {"rps": merged.rps, "requests": merged.requests,
                                      "errors": merged.errors, "cpu_s": cpu,
                                      "cpu_share": cpu / wall if wall else None,
                                      "ceiling_rps": ceilings(merged.requests, cpu),
                                      "p50_1conn_ms": one.p50_ms}
                result["reps"].append(figures)
                ctx.log(f"  rep {rep + 1}/{settings.reps} gateway {figures['gateway']['rps']:.0f} "
                        f"req/s (ceiling {_k(figures['gateway']['ceiling_rps'])}), nginx "
                        f"{figures['nginx']['rps']:.0f} req/s (ceiling "
                        f"{_k(figures['nginx']['ceiling_rps'])}); 1-connection p50 "
                        f"{_ms(figures['gateway']['p50_1conn_ms'])} / "
                        f"{_ms(figures['nginx']['p50_1conn_ms'])} ms")
    finally:
        harness.stop()
        stop_responder(responder)
    return result


def evaluate(measured: dict[str, Any]) -> BenchResult:
    """The ceiling rows from the repetitions."""
    reps = measured["reps"]

    def series(which: str, key: str) -> list[float | None]:
        return [rep[which][key] for rep in reps]

    closed = f"{WRK}, {measured['connections']} connections; CPU from /proc"
    seq = f"{loadclient.NAME}, gateway and nginx interleaved request by request"
    g_ceiling, n_ceiling = series("gateway", "ceiling_rps"), series("nginx", "ceiling_rps")
    ratio = paired_ratios(g_ceiling, n_ceiling)
    p50 = paired_ratios(series("gateway", "p50_1conn_ms"), series("nginx", "p50_1conn_ms"))
    targets = [
        Target(NAME, "gateway's ceiling on one core ÷ nginx's (requests per CPU-second, "
               "trivial upstream)", "", None, unit="x", load_generator=closed).judge(
            median(ratio), f"{_k(median(g_ceiling))} vs {_k(median(n_ceiling))} requests per "
                           "CPU-second (medians)"),
        Target(NAME, "gateway's ceiling on one core (requests per CPU-second)", "", None,
               unit="req/s", load_generator=closed).judge(median(g_ceiling)),
        Target(NAME, "nginx's ceiling on one core (requests per CPU-second)", "", None,
               unit="req/s", load_generator=closed).judge(median(n_ceiling)),
        Target(NAME, "p50 at 1 connection, gateway ÷ nginx (trivial upstream)", "", None,
               unit="x", load_generator=seq).judge(
            median(p50), f"{_ms(median(series('gateway', 'p50_1conn_ms')))} vs "
                         f"{_ms(median(series('nginx', 'p50_1conn_ms')))} ms"),
    ]
    layout = measured.get("cpu_layout") or {}
    pinning = (f"gateway and nginx pinned to CPU {layout.get('server')} (one busy at a time); "
               f"responder and wrk pinned to CPU {layout.get('load')}"
               if layout.get("server") is not None else "not pinned (one CPU)")
    return BenchResult(NAME, TITLE, targets, raw=measured, load_generator=closed,
                       pinning=pinning)


def run(ctx: Context) -> BenchResult:
    """Measure and evaluate."""
    return evaluate(measure(ctx))


def _k(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:.1f}k"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
