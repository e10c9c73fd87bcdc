"""Benchmark 1: what the gateway costs — product reads through it, through nginx, and direct.

Same product replica behind both proxies (the supervisor's gunicorn command), tracing off and
on (span files, default sampler), resilience on and off; nginx (Debian's, one process,
keep-alive to the upstream) is the yardstick a reverse proxy can reach. Per repetition: p50 at
one connection (bench.loadclient, the endpoints interleaved request by request), throughput
at 16 connections (wrk), CPU per request of each process (/proc during the wrk windows); the
figure is the median over repetitions. Measurements come from `bench.micro`.
"""

from __future__ import annotations

from typing import Any

from bench.stats import BenchResult, Target, median, paired_ratios, spread

NAME = "gateway"
TITLE = "Gateway overhead (product reads, gateway vs direct)"
# (gateway endpoint, its direct reference, label)
PAIRS = (
    ("gateway/on/none", "product/none", "resilience on, tracing off"),
    ("gateway/on/file", "product/file", "resilience on, tracing on (span files)"),
    ("gateway/off/none", "product/none", "resilience off, tracing off"),
)
NGINX = "nginx/none"
# The same gateway with public reads on its worker threads (GATEWAY_LOOP_READS=off), the
# least proxy Granian's RSGI shape allows (bench.rsgi_floor), and the least Python proxy
# without Granian (bench.asyncio_floor): what the event-loop reads saved, and the floors under
# the gateway's figure.
THREADS = "gateway/threads/none"
FLOOR = "floor/none"
ASYNCIO_FLOOR = "asyncio_floor/none"
NEEDS = {key for pair in PAIRS for key in pair[:2]} | {NGINX, THREADS, FLOOR, ASYNCIO_FLOOR}
# The goal: the gateway adds little over what nginx adds at one connection.
P50_RATIO_TARGET = 1.3
WRK_ROWS = "wrk 4.1 (closed loop)"


def _series(micro: dict[str, Any], key: str, part: str, metric: str) -> list[float | None]:
    return [rep[part][metric] for rep in micro["endpoints"].get(key, [])]


def _cpu(micro: dict[str, Any], key: str, process: str) -> float | None:
    return median([rep["cpu"].get(process, {}).get("ms_per_request")
                   for rep in micro["endpoints"].get(key, [])])


def compare(micro: dict[str, Any], gateway: str, direct: str) -> dict[str, Any]:
    """Per-repetition ratios and differences of one proxy endpoint (gateway or nginx, named
    by its key's first part) against its reference."""
    proxy = gateway.split("/", 1)[0]
    g_rps, d_rps = _series(micro, gateway, "closed", "rps"), _series(micro, direct, "closed", "rps")
    g_seq = _series(micro, gateway, "sequential", "p50_ms")
    # The direct run interleaved with this endpoint (its group's reference), when recorded.
    d_seq = [rep["sequential"].get("direct_p50_ms") or d for rep, d in zip(
        micro["endpoints"].get(gateway, []), _series(micro, direct, "sequential", "p50_ms"),
        strict=True)]
    g_p99, d_p99 = (_series(micro, gateway, "closed", "p99_ms"),
                    _series(micro, direct, "closed", "p99_ms"))
    g_p50, d_p50 = (_series(micro, gateway, "closed", "p50_ms"),
                    _series(micro, direct, "closed", "p50_ms"))
    g_one = [rep.get("sequential_one_cpu", {}).get("p50_ms")
             for rep in micro["endpoints"].get(gateway, [])]
    d_one = [rep.get("sequential_one_cpu", {}).get("p50_ms")
             for rep in micro["endpoints"].get(direct, [])]
    added_one = [None if g is None or d is None else g - d for g, d in zip(g_one, d_one, strict=True)]
    throughput = paired_ratios(g_rps, d_rps)
    p50_ratio = paired_ratios(g_seq, d_seq)
    added_p50 = [None if g is None or d is None else g - d for g, d in zip(g_seq, d_seq, strict=True)]
    added_p99 = [None if g is None or d is None else g - d for g, d in zip(g_p99, d_p99, strict=True)]
    return {
        "throughput_ratio": median(throughput), "throughput_ratio_reps": throughput,
        "throughput_ratio_spread": spread(throughput),
        "gateway_rps": median(g_rps), "direct_rps": median(d_rps),
        "added_p50_1conn_ms": median(added_p50), "added_p50_1conn_ms_reps": added_p50,
        "p50_1conn_ratio": median(p50_ratio), "p50_1conn_ratio_reps": p50_ratio,
        "gateway_p50_1conn_ms": median(g_seq), "direct_p50_1conn_ms": median(d_seq),
        "added_p50_1conn_one_cpu_ms": median(added_one),
        "one_cpu_p50_ms": {"gateway": median(g_one), "direct": median(d_one)},
        "under_load_p50_ms": {"gateway": median(g_p50), "direct": median(d_p50)},
        "under_load_p99_ms": {"gateway": median(g_p99), "direct": median(d_p99)},
        "added_p99_under_load_ms": median(added_p99),
        "p99_ratio_under_load": median(paired_ratios(g_p99, d_p99)),
        "cpu_ms_per_request": {"gateway": _cpu(micro, gateway, proxy),
                               "product": _cpu(micro, gateway, "product"),
                               "product_direct": _cpu(micro, direct, "product")},
    }


def evaluate(micro: dict[str, Any]) -> BenchResult:
    """The gateway's targets from the shared measurements."""
    comparisons = {label: compare(micro, gateway, direct) for gateway, direct, label in PAIRS}
    main = comparisons[PAIRS[0][2]]
    load = micro["load_generator"]
    nginx = compare(micro, NGINX, "product/none") if micro["endpoints"].get(NGINX) else None
    comparisons["nginx, same product"] = nginx
    beside = {label: compare(micro, key, "product/none") for key, label in (
        (THREADS, "reads on worker threads (GATEWAY_LOOP_READS=off)"),
        (FLOOR, "the least RSGI proxy on Granian (bench.rsgi_floor)"),
        (ASYNCIO_FLOOR, "the least Python proxy without Granian (bench.asyncio_floor)"))
        if micro["endpoints"].get(key)}
    comparisons.update(beside)
    seq = micro.get("sequential_generator") or load
    closed = micro.get("closed_generator") or load
    targets = p50_targets(main, nginx, seq) + throughput_targets(main, nginx, micro, closed)
    for label, figures in beside.items():
        targets.append(Target(NAME, f"p50 at 1 connection ÷ direct, {label}", "", None,
                              unit="x", load_generator=seq).judge(
            figures["p50_1conn_ratio"],
            f"{_ms(figures['gateway_p50_1conn_ms'])} vs {_ms(figures['direct_p50_1conn_ms'])} ms; "
            f"per rep {_fmt(figures['p50_1conn_ratio_reps'])}"))
    targets.append(allowance_target(main, nginx, beside, seq))
    targets.append(Target(NAME, "added p50 at 1 connection (resilience on, tracing off)", "",
                          None, unit="ms", load_generator=seq).judge(
        main["added_p50_1conn_ms"],
        f"{_ms(main['gateway_p50_1conn_ms'])} vs {_ms(main['direct_p50_1conn_ms'])} ms"))
    if main["added_p50_1conn_one_cpu_ms"] is not None:
        one = main["one_cpu_p50_ms"]
        targets.append(Target(NAME, "added p50 at 1 connection, everything on one CPU "
                              "(resilience on, tracing off)", "", None, unit="ms",
                              load_generator=seq).judge(
            main["added_p50_1conn_one_cpu_ms"],
            f"{one['gateway']:.2f} vs {one['direct']:.2f} ms: no cross-CPU wake-ups"))
    cpu = main["cpu_ms_per_request"]
    targets += cpu_targets(main, nginx, closed)
    targets.append(Target(NAME, "product CPU per read ÷ gateway CPU per proxied read (product "
                          "cores one gateway core can front)", "", None, unit="x",
                          load_generator=f"{closed}; CPU from /proc").judge(
        None if not cpu.get("gateway") else (cpu.get("product") or 0) / cpu["gateway"],
        f"gateway {cpu.get('gateway')} ms, product {cpu.get('product')} ms of CPU per request "
        "(from /proc, under load); steadier on a shared host than the throughput ratio"))
    for _gateway, _direct, label in PAIRS[1:]:
        figures = comparisons[label]
        targets.append(Target(NAME, f"throughput ratio ({label})", "", None, unit="x",
                              load_generator=closed).judge(
            figures["throughput_ratio"],
            f"{figures['gateway_rps']:.0f} vs {figures['direct_rps']:.0f} req/s"))
        targets.append(Target(NAME, f"added p50 at 1 connection ({label})", "", None,
                              unit="ms", load_generator=seq).judge(
            figures["added_p50_1conn_ms"]))
    targets.append(Target(NAME, "added p99 under load (resilience on, tracing off)", "", None,
                          unit="ms", load_generator=closed).judge(
        main["added_p99_under_load_ms"],
        f"p99 {main['under_load_p99_ms']['gateway']} vs {main['under_load_p99_ms']['direct']} ms"))
    notes = _notes(main, micro.get("gateway_profile"))
    measured = {k: v for k, v in micro["endpoints"].items() if k in NEEDS}
    return BenchResult(NAME, TITLE, targets,
                       raw={"comparisons": comparisons, "profile": micro.get("gateway_profile"),
                            "measurements": measured,
                            **{k: micro.get(k) for k in ("path", "connections", "seconds",
                                                         "sequential_count", "cpu_layout")}},
                       load_generator=load, pinning=_pinning(micro), notes=notes)


def p50_targets(main: dict[str, Any], nginx: dict[str, Any] | None, generator: str
                ) -> list[Target]:
    """p50 at one connection through the gateway and through nginx, each ÷ direct."""
    targets = [Target(NAME, "p50 at 1 connection, gateway ÷ direct (resilience on, tracing "
                      "off)", "<=", P50_RATIO_TARGET, unit="x", load_generator=generator).judge(
        main["p50_1conn_ratio"],
        f"{_ms(main['gateway_p50_1conn_ms'])} vs {_ms(main['direct_p50_1conn_ms'])} ms; per rep "
        f"{_fmt(main['p50_1conn_ratio_reps'])}")]
    if nginx is not None:
        targets.append(Target(NAME, "p50 at 1 connection, nginx ÷ direct (same product)", "",
                              None, unit="x", load_generator=generator).judge(
            nginx["p50_1conn_ratio"],
            f"{_ms(nginx['gateway_p50_1conn_ms'])} vs {_ms(nginx['direct_p50_1conn_ms'])} ms"))
    return targets


def allowance_target(main: dict[str, Any], nginx: dict[str, Any] | None,
                     beside: dict[str, dict[str, Any]], generator: str) -> Target:
    """What the p50 goal leaves over direct at one connection, beside what each proxy adds:
    the floors show how much of it the server shape spends before the gateway does anything."""
    direct = main["direct_p50_1conn_ms"]
    allowance = None if direct is None else (P50_RATIO_TARGET - 1) * direct
    added = [("gateway", main["added_p50_1conn_ms"])]
    added += [(label.split(" (", 1)[0], figures["added_p50_1conn_ms"])
              for label, figures in beside.items()]
    if nginx is not None:
        added.append(("nginx", nginx["added_p50_1conn_ms"]))
    return Target(NAME, f"added p50 at 1 connection the {P50_RATIO_TARGET}x goal allows "
                  "(direct p50 x 0.3)", "", None, unit="ms", load_generator=generator).judge(
        allowance, "added p50 (ms): " + "; ".join(f"{name} {_ms(value)}" for name, value in added))


def throughput_targets(main: dict[str, Any], nginx: dict[str, Any] | None,
                       micro: dict[str, Any], generator: str) -> list[Target]:
    """Throughput at `connections` through the gateway and nginx, ÷ direct and ÷ each other."""
    connections = micro["connections"]
    targets = [Target(NAME, f"throughput at {connections} connections, gateway ÷ direct "
                      "(resilience on, tracing off)", ">=", 0.6, unit="x",
                      load_generator=generator).judge(
        main["throughput_ratio"],
        f"{main['gateway_rps']:.0f} vs {main['direct_rps']:.0f} req/s (medians); "
        f"per rep {_fmt(main['throughput_ratio_reps'])}")]
    if nginx is not None:
        targets.append(Target(NAME, f"throughput at {connections} connections, nginx ÷ direct",
                              "", None, unit="x", load_generator=generator).judge(
            nginx["throughput_ratio"],
            f"{nginx['gateway_rps']:.0f} vs {nginx['direct_rps']:.0f} req/s"))
        targets.append(Target(NAME, f"throughput at {connections} connections, gateway ÷ nginx",
                              "", None, unit="x", load_generator=generator).judge(
            median(paired_ratios(_series(micro, "gateway/on/none", "closed", "rps"),
                                 _series(micro, NGINX, "closed", "rps")))))
    return targets


def cpu_targets(main: dict[str, Any], nginx: dict[str, Any] | None, generator: str
                ) -> list[Target]:
    """CPU per request of the gateway, nginx and product, from /proc during the wrk windows."""
    cpu = main["cpu_ms_per_request"]
    source = f"{generator}; CPU from /proc"
    targets = [
        Target(NAME, "gateway CPU per proxied read (resilience on, tracing off)", "", None,
               unit="ms", load_generator=source).judge(cpu.get("gateway")),
        Target(NAME, "product CPU per read (behind the gateway)", "", None, unit="ms",
               load_generator=source).judge(cpu.get("product"))]
    if nginx is not None:
        targets.append(Target(NAME, "nginx CPU per proxied read", "", None, unit="ms",
                              load_generator=source).judge(nginx["cpu_ms_per_request"]["gateway"]))
    return targets


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pinning(micro: dict[str, Any]) -> str:
    layout = micro.get("cpu_layout") or {}
    if layout.get("server") is None:
        return "not pinned (one CPU)"
    return (f"product pinned to CPU {layout['server']}; gateway and load generator pinned to "
            f"CPU {layout['load']}")


def _fmt(values: list[float | None]) -> str:
    return ", ".join("—" if v is None else f"{v:.2f}" for v in values)


def _notes(main: dict[str, Any], profile: dict[str, Any] | None) -> list[str]:
    notes = []
    cpu = main["cpu_ms_per_request"]
    if cpu.get("gateway") is not None:
        notes.append(
            f"The gateway (Granian, its front answering public reads on the event loop) used "
            f"{cpu['gateway']:.2f} ms of CPU per proxied read (product {cpu['product']} ms). At "
            "one connection nothing overlaps, so the added p50 is roughly that CPU time plus one "
            "extra loopback hop and the hand-offs between Granian's runtime and the Python "
            "event loop; the floor row (bench.rsgi_floor) is what the hop and the hand-offs "
            "cost alone.")
    if profile and "areas_ms_per_call" in profile:
        areas = profile["areas_ms_per_call"]
        own = {k: v for k, v in areas.items() if "waiting" not in k}
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(own.items())[:6])
        notes.append(
            f"Profile of the gateway app in-process (cProfile, its WSGI path, one call at a "
            f"time): {profile['cpu_ms_per_call']:.2f} ms CPU per call without the profiler "
            f"(the gateway under load: {cpu.get('gateway')} ms per request, which adds "
            "Granian's accept and parsing and the hand-off to Python); profiled own time per "
            f"call by area (ms, inflated ~2x by cProfile): {top}.")
    return notes
