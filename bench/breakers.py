"""Benchmark: breaker semantics — a hung replica rejoins, a half-failing replica trips.

Rejoin (on the running stack, two product replicas, resilience on): steady catalog reads go
through the gateway while product-2's replies are held (a `timeout` toxic) until the gateway's
breaker on it opens, and a little longer; then the toxic is removed. Measured: the seconds from
the heal until product-2's breaker is closed again (goal: within the reset timeout plus one
trial, the longest a trial may take being the read timeout), and the share of the reads it
serves in the seconds after (two balanced replicas would serve half each). Before breakers got
their trial while other replicas served, product-2 stayed open and served nothing.

Trip (a real gateway process in front of an upstream answering 500 to every other call): the
calls until the gateway's breaker opens, under the default policy (a failure rate over a
window) and under the consecutive-failures rule alone (which never sees two failures in a row).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from bench.common import Context
from bench.harness import ADMIN_URLS, Harness, admin_url
from bench.stacks import StackPool, shared_options
from bench.stats import BenchResult, Target, median

NAME = "breakers"
TITLE = "Breaker semantics (a hung replica rejoins; a half-failing replica trips)"
LOAD_GENERATOR = "requests, 4 threads of back-to-back catalog reads; sequential calls for the trip"
HUNG = "product-2"
READ_PATH = "/api/v1/products?page=1&per_page=5"
TRIP_CALLS = 200
CONSECUTIVE_ONLY = {"GATEWAY_BREAKER_WINDOW": "time", "GATEWAY_BREAKER_WINDOW_SIZE": "60",
                    "GATEWAY_BREAKER_MINIMUM_CALLS": "1000000"}


def _view(gateway: str) -> dict[str, Any]:
    return requests.get(f"{admin_url(gateway)}/gateway/upstreams", timeout=5).json()


def _replicas(gateway: str, service: str = "product") -> dict[str, dict[str, Any]]:
    return {i["url"]: i for i in _view(gateway)["upstreams"][service]["instances"]}


def _poll(condition: Callable[[], Any], seconds: float, every: float = 0.05) -> float | None:
    """Seconds until `condition()` is true, or None after `seconds`."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if condition():
            return time.monotonic() - began
        time.sleep(every)
    return None


class SteadyReads:
    """Back-to-back catalog reads from a few threads while the block runs."""

    def __init__(self, gateway: str, threads: int = 4) -> None:
        self.gateway, self.stop = gateway, threading.Event()
        self.statuses: dict[str, int] = {}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, daemon=True) for _ in range(threads)]

    def _read(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    status = str(session.get(self.gateway + READ_PATH, timeout=10).status_code)
                except requests.RequestException as exc:
                    status = type(exc).__name__
                with self._lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1

    def __enter__(self) -> SteadyReads:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(15)


def _ok(replica: dict[str, Any]) -> int:
    return int(replica["served"]) - int(replica["failures"])


def _rejoin_rep(ctx: Context, gateway: str, faults: Any, hung_url: str, limit_s: float) -> dict[str, Any]:
    faults.clear_all()
    _poll(lambda: _replicas(gateway)[hung_url]["breaker"] == "closed", 20)
    with SteadyReads(gateway) as reads:
        faults.timeout(HUNG, 0)  # replies held until the toxic is removed
        opened = _poll(lambda: _replicas(gateway)[hung_url]["breaker"] == "open", 45, every=0.1)
        time.sleep(ctx.settings.rejoin_hold_s)  # stays hung a while after opening, like the report
        at_heal = _replicas(gateway)[hung_url]
        faults.clear(HUNG)
        rejoined = _poll(lambda: _replicas(gateway)[hung_url]["breaker"] == "closed", limit_s + 10)
        before = _replicas(gateway)
        time.sleep(ctx.settings.rejoin_share_s)  # the window whose share is measured
        after = _replicas(gateway)
        statuses = dict(reads.statuses)
    served = {url: _ok(after[url]) - _ok(before[url]) for url in after}
    total = sum(served.values())
    return {"opened_after_s": opened, "state_at_heal": at_heal["breaker"],
            "next_trial_at_heal_s": at_heal.get("next_trial_in"), "rejoin_s": rejoined,
            "share_after": served[hung_url] / total if total else None, "served_after": served,
            "read_statuses": statuses}


def _half_failing() -> Callable[..., Iterable[bytes]]:
    """A WSGI upstream answering 500 to every second request (never two failures in a row)."""
    count, lock = [0], threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            count[0] += 1
            failing = count[0] % 2 == 0
        start_response("500 Internal Server Error" if failing else "200 OK",
                       [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    return app


class _Quiet(WSGIRequestHandler):
    def log_request(self, *_args: object) -> None:  # hundreds of lines say nothing here
        pass


def _calls_until_open(gateway: str) -> dict[str, Any]:
    with requests.Session() as session:
        for number in range(1, TRIP_CALLS + 1):
            # A write: no retry elsewhere and no stale catalog answer to hide the breaker.
            answer = session.post(f"{gateway}/api/v1/products", json={"name": "x"}, timeout=10)
            if answer.status_code == 503:
                (replica,) = _replicas(gateway).values()
                return {"opened": True, "calls": number - 1, "last_trip": replica.get("last_trip")}
    return {"opened": False, "calls": TRIP_CALLS, "last_trip": None}


def _trip(ctx: Context) -> dict[str, Any]:
    upstream = make_server("127.0.0.1", 0, _half_failing(), threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=upstream.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    harness = Harness(ctx.work / "breakers-var", log=ctx.quiet)
    url = f"http://127.0.0.1:{upstream.server_port}"
    try:
        default = harness.start_gateway("gateway-default", url)
        consecutive = harness.start_gateway("gateway-consecutive", url, extra_env=CONSECUTIVE_ONLY)
        return {"default": _calls_until_open(default.url),
                "consecutive_only": _calls_until_open(consecutive.url),
                "policy": _view(default.url)["upstreams"]["product"]["policy"]}
    finally:
        harness.stop()
        upstream.shutdown()
        upstream.server_close()


def _text(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def run(ctx: Context, pool: StackPool) -> BenchResult:
    """Measure and judge the rejoin and trip targets."""
    from chaos.faults import Faults

    trip = _trip(ctx)
    stack = pool.ensure(shared_options(ctx, ctx.settings.isolation_experiments[0], True))
    replicas_before = stack.info().product_replicas
    stack.scale("product", 2, log=pool.log)
    info = stack.info()
    hung_url = stack.state().instances[HUNG].proxy.url
    ADMIN_URLS[info.gateway_url] = info.gateway_admin_url
    policy = _view(info.gateway_url)["upstreams"]["product"]["policy"]
    limit_s = float(policy["reset_timeout"]) + float(policy["read_timeout"])
    faults = Faults(info.toxiproxy_url)
    reps = []
    try:
        for rep in range(ctx.settings.rejoin_reps):
            figures = _rejoin_rep(ctx, info.gateway_url, faults, hung_url, limit_s)
            reps.append(figures)
            ctx.log(f"  rep {rep + 1}/{ctx.settings.rejoin_reps}: {HUNG} opened "
                    f"{_text(figures['opened_after_s'])} s into the hang, rejoined "
                    f"{_text(figures['rejoin_s'])} s after the heal (trial due in "
                    f"{_text(figures['next_trial_at_heal_s'])} s), then served "
                    f"{_text(figures['share_after'])} of the reads")
    finally:
        faults.clear_all()
        stack.scale("product", replicas_before, log=pool.log)
    rejoin = median([r["rejoin_s"] for r in reps])
    share = median([r["share_after"] for r in reps])
    never = [r for r in reps if r["rejoin_s"] is None]
    default, alone = trip["default"], trip["consecutive_only"]
    targets = [
        Target(NAME, f"seconds from heal until a hung replica's breaker closes (reset "
               f"{policy['reset_timeout']:g} s + one trial ≤ read timeout {policy['read_timeout']:g} s)",
               "<=", limit_s, unit="s", load_generator=LOAD_GENERATOR).judge(
            None if never else rejoin,
            f"{len(never)} of {len(reps)} reps never rejoined" if never else
            "per rep: " + ", ".join(f"{r['rejoin_s']:.2f}" for r in reps)),
        Target(NAME, "share of reads the rejoined replica serves in the next "
               f"{ctx.settings.rejoin_share_s:g} s (2 replicas)", ">=", 0.35, unit="x",
               load_generator=LOAD_GENERATOR).judge(
            share, "per rep: " + ", ".join(f"{r['share_after']:.2f}" for r in reps
                                           if r["share_after"] is not None)),
        Target(NAME, "a replica failing 50 % of calls trips (1 = its breaker opened)", "==", 1,
               load_generator="requests, sequential").judge(
            1.0 if default["opened"] else 0.0,
            f"opened after {default['calls']} calls: {default['last_trip']}" if default["opened"]
            else f"still closed after {TRIP_CALLS} calls"),
        Target(NAME, "the same replica under the consecutive-failures rule alone (1 = opened)", "",
               None, load_generator="requests, sequential").judge(
            1.0 if alone["opened"] else 0.0,
            f"still closed after {alone['calls']} calls (never two failures in a row)"
            if not alone["opened"] else f"opened after {alone['calls']} calls"),
    ]
    raw = {"rejoin_reps": reps, "policy": policy, "trip": trip, "rejoin_limit_s": limit_s}
    return BenchResult(NAME, TITLE, targets, raw=raw, load_generator=LOAD_GENERATOR,
                       pinning="not pinned (stack under its CPU quotas; trip gateway unconstrained)")
