"""The measurement matrix behind the gateway and tracing benchmarks.

Every process is started once and kept idle until its turn: product instances (tracing off,
span files with the default sampler, span files with every request sampled, OTLP) pinned to
the server CPU, and gateways (resilience on/off × tracing modes) and nginx (Debian's, as a
keep-alive reverse proxy: the yardstick) pinned to the load-generator CPU, each pointed
straight at its own product. Every
repetition then measures each endpoint in turn (the order rotates per repetition): a
closed-loop throughput window and a one-connection latency run, plus the CPU each process
used. Ratios are always taken between endpoints of the same repetition.

Pinning: product owns one core, so "direct" is product's capacity on one core; the gateway
shares the other core with the load generator, which needs well under 10% of it at these
rates. What is measured is whether the gateway keeps up with product and what it adds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench import loadclient
from bench.common import Context, cpu_layout, cpu_speed_ms, load_average, pinned_to
from bench.harness import Harness, Server, cpu_seconds, move_group
from bench.wrk import NAME as WRK
from bench.wrk import run_wrk

READ_PATH = "/api/v1/products/product-7"
SEED_PRODUCTS = 20
# Also measured with the load generator, gateway and product on one CPU: at one connection
# nothing runs in parallel, and this VM's cross-CPU wake-ups would otherwise be counted too.
ONE_CPU = ("product/none", "gateway/on/none")
# The endpoints whose one-connection latencies are compared, interleaved together; the first
# of each group is the direct reference its others are divided by. The product appears in
# several groups: every endpoint is compared with the direct run interleaved with it, and an
# interleave holds only what its figures compare (the row: direct, gateway, nginx),
# because each endpoint added to one leaves every process on the path idle for one more
# request in each round, and those wake-ups cost a chain of threads more than one process.
SEQUENTIAL_GROUPS = (
    ("product/none", "gateway/on/none", "nginx/none"),
    ("product/none", "gateway/off/none", "gateway/threads/none"),
    ("product/none", "floor/none", "asyncio_floor/none"),
    ("product/file", "gateway/on/file"),
    ("product/all", "gateway/on/all"),
    ("product/otlp", "gateway/on/otlp"),
)
WARMUP_S = 1  # one wrk second per endpoint after start: connections, caches, threads warm


@dataclass(frozen=True)
class Endpoint:
    """Something the load generator drives: a product instance, or a gateway in front of one."""

    key: str
    kind: str  # "product", "gateway", "nginx", "floor" (bench.rsgi_floor) or "asyncio_floor"
    tracing: str
    resilience: bool = True
    settings: tuple[tuple[str, str], ...] = ()  # more of a gateway's settings (GATEWAY_*)

    @property
    def product_key(self) -> str:
        return f"product/{self.tracing}"


# In measuring order: each gateway right after the product it is compared with.
ENDPOINTS = {e.key: e for e in (
    Endpoint("product/none", "product", "none"),
    Endpoint("gateway/on/none", "gateway", "none", True),
    Endpoint("nginx/none", "nginx", "none"),
    Endpoint("gateway/off/none", "gateway", "none", False),
    Endpoint("gateway/threads/none", "gateway", "none", True, (("GATEWAY_LOOP_READS", "off"),)),
    Endpoint("floor/none", "floor", "none"),
    Endpoint("asyncio_floor/none", "asyncio_floor", "none"),
    Endpoint("product/file", "product", "file"),
    Endpoint("gateway/on/file", "gateway", "file", True),
    Endpoint("product/all", "product", "all"),
    Endpoint("gateway/on/all", "gateway", "all", True),
    Endpoint("product/otlp", "product", "otlp"),
    Endpoint("gateway/on/otlp", "gateway", "otlp", True),
)}


def _seed(product: Server, admin_header: dict[str, str]) -> None:
    from local_stack.seed import catalog

    session = requests.Session()
    session.headers.update(admin_header)
    for item in catalog(SEED_PRODUCTS):
        response = session.post(product.url + "/api/v1/products", json=item, timeout=10)
        if response.status_code not in (200, 201, 409):
            raise RuntimeError(f"seeding product failed: POST /api/v1/products answered "
                               f"{response.status_code} {response.text[:200]}")
    check = session.get(product.url + READ_PATH, timeout=10)
    if check.status_code != 200:
        raise RuntimeError(f"GET {READ_PATH} on product answered {check.status_code}")


def _start(ctx: Context, harness: Harness, keys: list[str]) -> tuple[dict[str, Server], str | None]:
    layout = cpu_layout()
    wanted = [ENDPOINTS[k] for k in keys]
    tracings = sorted({e.tracing for e in wanted}, key=["none", "file", "all", "otlp"].index)
    otlp = harness.start_receiver(cpu=layout["load"]) if "otlp" in tracings else None
    servers: dict[str, Server] = {}
    harness.migrate()
    for tracing in tracings:  # started together, then waited for together
        servers[f"product/{tracing}"] = harness.start_product(
            f"product-{tracing}", tracing=tracing, cpu=layout["server"], otlp=otlp, wait=False)
    for endpoint in wanted:
        if endpoint.kind == "gateway":
            servers[endpoint.key] = harness.start_gateway(
                endpoint.key.replace("/", "-"), servers[endpoint.product_key].url,
                tracing=endpoint.tracing, resilience=endpoint.resilience, cpu=layout["load"],
                otlp=otlp, wait=False, extra_env=dict(endpoint.settings))
        elif endpoint.kind == "floor":
            servers[endpoint.key] = harness.start_floor(
                endpoint.key.replace("/", "-"), servers[endpoint.product_key].url,
                cpu=layout["load"], wait=False)
        elif endpoint.kind == "asyncio_floor":
            servers[endpoint.key] = harness.start_asyncio_floor(
                endpoint.key.replace("/", "-"), servers[endpoint.product_key].url,
                cpu=layout["load"], wait=False)
    harness.wait_ready(list(servers.values()))
    for endpoint in wanted:
        if endpoint.kind == "nginx":
            servers[endpoint.key] = _start_nginx(ctx, harness, servers[endpoint.product_key],
                                                 layout["load"])
    _seed(servers[f"product/{tracings[0]}"], harness.admin_header())
    for key, server in servers.items():
        ctx.log(f"  started {key} at {server.url}")
        run_wrk(_port(server), READ_PATH, connections=ctx.settings.micro_connections,
                seconds=WARMUP_S)
    return servers, otlp


def _start_nginx(ctx: Context, harness: Harness, product: Server, cpu: int | None) -> Server:
    """nginx in front of `product`, stopped with the harness's processes."""
    from bench.nginx import start_nginx

    folder = harness.var / "nginx"
    process, port = start_nginx(_port(product), cpu, folder)
    harness.extra.append(process)
    return Server("nginx", f"http://127.0.0.1:{port}", process.pid, folder / "nginx-error.log")


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _closed_slice(ctx: Context, endpoint: Endpoint, servers: dict[str, Server], seconds: float
                  ) -> tuple[loadclient.LoadResult, dict[str, float], float, float]:
    """One closed-loop window against `endpoint`; CPU seconds its processes used; wall time;
    the speed of product's core right after (`cpu_speed_ms`)."""
    server = servers[endpoint.key]
    groups = {"product": servers[endpoint.product_key].pid}
    if endpoint.kind != "product":
        groups[endpoint.kind] = server.pid
    before = {name: cpu_seconds(pid) for name, pid in groups.items()}
    wall = time.monotonic()
    closed = run_wrk(_port(server), READ_PATH, connections=ctx.settings.micro_connections,
                     seconds=seconds)
    wall = time.monotonic() - wall
    used = {name: cpu_seconds(pid) - before[name] for name, pid in groups.items()}
    _settle(list(groups.values()))
    return closed, used, wall, cpu_speed_ms(cpu_layout()["server"])


def _settle(pids: list[int], *, quiet_share: float = 0.05, window: float = 0.1,
            limit: float = 3.0) -> None:
    """Wait until `pids` use less than `quiet_share` of a core over `window` (at most
    `limit` seconds): a traced endpoint's exporter drains its queue after the load stops, and
    that must not land in the next endpoint's slice on the same CPU."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        if sum(cpu_seconds(pid) for pid in pids) - before < quiet_share * window:
            return


def _closed_round(ctx: Context, keys: list[str], servers: dict[str, Server]
                  ) -> dict[str, dict[str, Any]]:
    """Every endpoint in alternating slices (ABCABC…), merged per endpoint: drift on a busy
    host then lands on every endpoint alike (wrk windows are whole seconds)."""
    slices = max(1, min(ctx.settings.micro_slices, int(ctx.settings.micro_seconds)))
    parts: dict[str, list[Any]] = {k: [] for k in keys}
    for _ in range(slices):
        for key in keys:
            parts[key].append(_closed_slice(ctx, ENDPOINTS[key], servers,
                                            ctx.settings.micro_seconds / slices))
    measured = {}
    for key, items in parts.items():
        closed = loadclient.merge([item[0] for item in items])
        wall = sum(item[2] for item in items)
        cpu = {}
        for name in items[0][1]:
            utilisation = sum(item[1][name] for item in items) / wall
            cpu[name] = {"utilisation": round(utilisation, 3),
                         "ms_per_request": round(utilisation * 1000 / closed.rps, 3)
                         if closed.rps else None}
        if closed.errors:
            ctx.log(f"    warning: {key} answered errors {closed.statuses}")
        measured[key] = {"closed": closed.as_dict(), "cpu": cpu, "slices": slices,
                         "loadavg": load_average(),
                         "speed_probe_ms": [item[3] for item in items]}
    return measured


def _sequential_round(ctx: Context, keys: list[str], servers: dict[str, Server]
                      ) -> dict[str, dict[str, Any]]:
    """One connection per endpoint, one request at a time taking them in turn, within each
    group of endpoints compared with one another (`SEQUENTIAL_GROUPS`): interleaving all ten
    would leave each process idle for nine requests out of ten and add the wake-up of an idle
    process to every figure, the direct product's included.

    Each endpoint's figures carry, as "direct", the p50 of its group's reference run in the
    same interleave; the reference's own figures are those of its first group."""
    measured: dict[str, dict[str, Any]] = {}
    for group in SEQUENTIAL_GROUPS:
        chosen = [k for k in keys if k in group]
        if not chosen or (chosen == [group[0]] and group[0] in measured):
            continue  # nothing to compare with a reference already measured
        results = loadclient.run(loadclient.interleaved(
            [_port(servers[k]) for k in chosen], READ_PATH,
            count=ctx.settings.sequential_count, max_seconds=30))
        figures = {key: result.as_dict() for key, result in zip(chosen, results, strict=True)}
        reference = figures.get(group[0])
        for key, found in figures.items():
            if key == group[0]:
                measured.setdefault(key, found)
            else:
                measured[key] = {**found, "direct_p50_ms": reference and reference["p50_ms"]}
    return measured


def _one_cpu_round(ctx: Context, servers: dict[str, Server]) -> dict[str, dict[str, Any]]:
    """The ONE_CPU pair interleaved with load generator, gateway and product on one CPU."""
    layout = cpu_layout()
    keys = [k for k in ONE_CPU if k in servers]
    if layout["server"] is None or len(keys) < 2:
        return {}
    gateway = servers["gateway/on/none"]
    try:
        move_group(gateway.pid, {layout["server"]})
        with pinned_to(layout["server"]):
            return _sequential_round(ctx, keys, servers)
    finally:
        move_group(gateway.pid, {layout["load"]})


def measure(ctx: Context, keys: set[str]) -> dict[str, Any]:
    """Start what `keys` need, measure every endpoint `reps` times; every raw number."""
    unknown = keys - ENDPOINTS.keys()
    if unknown:
        raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {sorted(ENDPOINTS)}")
    order = [k for k in ENDPOINTS if k in keys]
    harness = Harness(ctx.work / "micro", log=ctx.log)
    layout = cpu_layout()
    result: dict[str, Any] = {"path": READ_PATH, "endpoints": {k: [] for k in order},
                              "connections": ctx.settings.micro_connections,
                              "seconds": ctx.settings.micro_seconds,
                              "sequential_count": ctx.settings.sequential_count,
                              "cpu_layout": layout,
                              "load_generator": f"{WRK}; one connection: {loadclient.NAME}",
                              "closed_generator": f"{WRK}, {ctx.settings.micro_connections} "
                                                  "connections",
                              "sequential_generator": f"{loadclient.NAME}, each endpoint "
                                                      "interleaved request by request with its "
                                                      "direct reference"}
    try:
        ctx.log(f"  starting {len(order)} endpoint(s) (product on CPU {layout['server']}, "
                f"gateways and load generator on CPU {layout['load']})")
        servers, otlp = _start(ctx, harness, order)
        with pinned_to(layout["load"]):
            for rep in range(ctx.settings.reps):
                rotated = order[rep % len(order):] + order[:rep % len(order)]
                measured = _closed_round(ctx, rotated, servers)
                for key, seq in _sequential_round(ctx, rotated, servers).items():
                    measured[key]["sequential"] = seq
                for key, seq in _one_cpu_round(ctx, servers).items():
                    measured[key]["sequential_one_cpu"] = seq
                for key in order:
                    result["endpoints"][key].append(measured[key])
                    closed, seq = measured[key]["closed"], measured[key]["sequential"]
                    ctx.log(f"  rep {rep + 1}/{ctx.settings.reps} {key:<17} "
                            f"{closed['rps']:>7.0f} req/s  p50 {closed['p50_ms']:.2f} ms  "
                            f"p99 {closed['p99_ms']:.2f} ms  | 1 conn p50 "
                            f"{seq['p50_ms']:.2f} ms")
        if otlp:
            result["otlp_receiver"] = harness.receiver_stats(otlp)
        traces = ctx.work / "micro" / "traces"
        if traces.exists():
            result["span_files_bytes"] = sum(p.stat().st_size for p in traces.glob("*.jsonl*"))
        if "gateway/on/none" in servers and ctx.settings.mode == "full":
            result["gateway_profile"] = _profile(ctx, servers["product/none"].url)
        if otlp and ctx.settings.mode == "full":
            result["tracing_profile"] = _tracing_profile(ctx, harness, otlp)
    finally:
        harness.stop()
    return result


def _profile(ctx: Context, product_url: str) -> dict[str, Any]:
    """The gateway's own code path under cProfile, in a child process (see profile_gateway)."""
    from bench.profile_gateway import run_profile

    ctx.log("  profiling the gateway's request path in-process (cProfile, 300 requests)")
    try:
        return run_profile(product_url, Path(ctx.work / "micro"), requests_count=300,
                           cpu=cpu_layout()["load"])
    except Exception as exc:  # noqa: BLE001 - a profile is evidence, not a result
        return {"error": str(exc)}


def _tracing_profile(ctx: Context, harness: Harness, otlp: str) -> dict[str, Any]:
    """Product's CPU per read with tracing off, spans made, span files, OTLP (child processes)."""
    from bench.profile_tracing import run_profiles

    ctx.log("  measuring product's CPU per read per tracing variant in-process (4 child processes)")
    try:
        return run_profiles(harness.db_url, ctx.work / "micro", otlp, requests_count=200,
                            cpu=cpu_layout()["server"])
    except Exception as exc:  # noqa: BLE001 - a profile is evidence, not a result
        return {"error": str(exc)}
