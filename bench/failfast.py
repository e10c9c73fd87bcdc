"""Benchmark 5: fail-fast — cart calls while cart's breaker is open vs the configured timeout.

On the running stack (resilience on): a 3 s latency toxic on cart makes a burst of cart
calls wait out the gateway's read timeout (the reference, measured in the same repetition)
until the breaker opens; then one connection sends cart calls back to back while it is
open (each answered 503 `cart_unavailable` without touching cart). Then the toxic is
cleared and the breaker allowed to close before the next repetition. The cart p99 after the
breaker opened in the cart-outage runs (isolation benchmark) is reported alongside.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench import loadclient
from bench.common import Context
from bench.harness import ADMIN_URLS, admin_url
from bench.stacks import StackPool, shared_options
from bench.stats import BenchResult, Target, median, ratio
from chaos.experiments.measurements import breaker_state

NAME = "failfast"
TITLE = "Fail-fast (cart calls while its breaker is open)"
LOAD_GENERATOR = "bench.loadclient sequential (1 keep-alive connection) + requests for the burst"
CART_PATH = "/api/v1/cart"
OUTAGE_VERDICT = "cart calls fail fast once the breaker is open (p99 < 10 ms)"
LATENCY_MS = 3000


def _upstreams(gateway: str) -> dict[str, Any]:
    return requests.get(f"{admin_url(gateway)}/gateway/upstreams", timeout=5).json()


def _wait_breaker(gateway: str, state: str, seconds: float, poke: dict[str, str] | None = None
                  ) -> float | None:
    """Seconds until cart's breaker shows `state` (poking cart when given headers); None."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if breaker_state({"body": _upstreams(gateway)}, "cart") == state:
            return time.monotonic() - began
        if poke is not None:
            requests.get(gateway + CART_PATH, headers=poke, timeout=5)
        time.sleep(0.2)
    return None


def _timed_get(url: str, headers: dict[str, str]) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        status = requests.get(url, headers=headers, timeout=15).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return {"ms": (time.perf_counter() - began) * 1000, "status": status}


def _rep(ctx: Context, gateway: str, faults: Any, headers: dict[str, str], threshold: int
         ) -> dict[str, Any]:
    faults.clear_all()
    closed_after = _wait_breaker(gateway, "closed", 15, poke=headers)
    faults.latency("cart", ms=LATENCY_MS)
    try:
        burst = threshold + 3
        with ThreadPoolExecutor(max_workers=burst) as pool:
            slow = list(pool.map(lambda _i: _timed_get(gateway + CART_PATH, headers), range(burst)))
        opened_after = _wait_breaker(gateway, "open", 5)
        port = int(gateway.rsplit(":", 1)[1])
        fast = loadclient.run(loadclient.sequential("127.0.0.1", port, CART_PATH,
                                              count=ctx.settings.failfast_open_samples,
                                              max_seconds=2.5, headers=headers))
    finally:
        faults.clear_all()
    return {"was_closed_after_s": closed_after, "timed_out_calls": slow,
            "timed_out_p50_ms": median([c["ms"] for c in slow]),
            "breaker_open_after_burst_s": opened_after, "open": fast.as_dict(),
            "open_p99_ms": fast.p99_ms, "open_p50_ms": fast.p50_ms}


def run(ctx: Context, pool: StackPool, outage_runs: list[dict[str, Any]] | None = None
        ) -> BenchResult:
    """Measure and judge the fail-fast target."""
    from chaos.faults import Faults

    stack = pool.ensure(shared_options(ctx, ctx.settings.isolation_experiments[0], True))
    info = stack.info()
    token = next(iter(stack.tokens(1, log=pool.log).values()))
    headers = {"Authorization": f"Bearer {token}"}
    ADMIN_URLS[info.gateway_url] = info.gateway_admin_url
    policy = (_upstreams(info.gateway_url)["upstreams"]["cart"].get("policy") or {})
    threshold = int(policy.get("failure_threshold", 5))
    faults = Faults(info.toxiproxy_url)
    reps = []
    try:
        for rep in range(ctx.settings.reps):
            figures = _rep(ctx, info.gateway_url, faults, headers, threshold)
            reps.append(figures)
            ctx.log(f"  rep {rep + 1}/{ctx.settings.reps}: timed-out cart calls p50 "
                    f"{figures['timed_out_p50_ms']:.0f} ms; breaker open → p50 "
                    f"{figures['open_p50_ms']:.2f} ms, p99 {figures['open_p99_ms']:.2f} ms "
                    f"({figures['open']['statuses']})")
    finally:
        faults.clear_all()
        _wait_breaker(info.gateway_url, "closed", 12, poke=headers)
    read_timeout_ms = float(policy.get("read_timeout", 2.0)) * 1000
    p99 = median([r["open_p99_ms"] for r in reps])
    slow = median([r["timed_out_p50_ms"] for r in reps])
    verdicts = [r["verdicts"].get(OUTAGE_VERDICT, {}) for r in (outage_runs or [])]
    from_outage = [v.get("measured") for v in verdicts]
    raw = {"reps": reps, "policy": policy, "read_timeout_ms": read_timeout_ms,
           "open_p99_ms": p99, "timed_out_p50_ms": slow,
           "open_p99_vs_timed_out": ratio(p99, slow),
           "open_p99_vs_read_timeout": ratio(p99, read_timeout_ms),
           "cart_outage_runs_open_p99_ms": from_outage}
    targets = [
        Target(NAME, "cart call p99 while the breaker is open", "<", 10.0, unit="ms",
               load_generator=LOAD_GENERATOR).judge(
            p99, f"statuses {reps[-1]['open']['statuses'] if reps else '—'}; "
                 f"{ctx.settings.failfast_open_samples} calls per rep"),
        Target(NAME, "open-breaker p99 ÷ a timed-out call (same rep)", "", None, unit="x",
               load_generator=LOAD_GENERATOR).judge(
            raw["open_p99_vs_timed_out"],
            f"timed-out calls took {slow:.0f} ms (read timeout {read_timeout_ms:.0f} ms)"
            if slow is not None else ""),
    ]
    present = [v for v in from_outage if v is not None]
    if present:
        targets.append(Target(NAME, "cart p99 after the breaker opened, under load (cart-outage "
                              "runs)", "", None, unit="ms",
                              load_generator="Locust FastHttpUser").judge(
            median(present), "reported, not judged: a short run has only a handful of cart "
            "calls after the breaker opens, so its p99 is their maximum, and they queue behind "
            "the mixed load; per run: " + "; ".join(v.get("detail", "") for v in verdicts)))
    return BenchResult(NAME, TITLE, targets, raw=raw, load_generator=LOAD_GENERATOR,
                       pinning="not pinned (stack under its CPU quotas)")
