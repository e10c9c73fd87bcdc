"""Benchmark 6: scaling — flash-sale throughput with 1, 2 and 3 product replicas.

One run of the real `product-scaling` experiment (each product replica under its 0.25-CPU
quota, 4 ms of simulated CPU per read, 8 Locust users per replica) whose replica steps go
1, 2, 3, then 3, 2, 1, then 1, 2, 3: three repetitions, each with its own one-replica
reference, the order balancing drift on a shared host. Its control steps (counter-case and
open loop) are left out here. Per step the experiment records what each instance used of
its CPU quota and how long it was throttled: that names the limiting resource.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.common import Context
from bench.stacks import StackPool, definition, experiment_kwargs
from bench.stats import BenchResult, Target, median, ratio

NAME = "scaling"
TITLE = "Independent scaling (flash-sale reads, product replicas under CPU quotas)"
LOAD_GENERATOR = "Locust FastHttpUser (loadtests.runner, hot-reads scenario, flash-sale shape)"


def order(replicas: tuple[int, ...], reps: int) -> list[int]:
    """Replica counts of every step: ascending, then descending, alternately."""
    steps: list[int] = []
    for rep in range(reps):
        steps.extend(replicas if rep % 2 == 0 else tuple(reversed(replicas)))
    return steps


def repetitions(steps: list[dict[str, Any]], per_rep: int) -> list[dict[int, dict[str, Any]]]:
    """The product steps grouped per repetition, by replica count."""
    product = [s for s in steps if s.get("kind") == "product"]
    return [{s["replicas"]: s for s in product[i:i + per_rep]}
            for i in range(0, len(product), per_rep)]


def _step_view(step: dict[str, Any]) -> dict[str, Any]:
    cpu = step.get("cpu") or {}
    return {"ok_rps": step.get("ok_rps"), "p95_ms": step.get("p95_ms"),
            "error_rate": step.get("error_rate"), "users": step.get("users"),
            "limited_by": step.get("limited_by"), "locust_cpu_share": step.get("locust_cpu_share"),
            "product_cpu": {k: v for k, v in cpu.items() if k.startswith("product")},
            "gateway_cpu": cpu.get("gateway")}


def run(ctx: Context, pool: StackPool) -> BenchResult:
    """The scaling steps and their targets."""
    from chaos.experiments.runner import run_experiment

    replicas = ctx.settings.scaling_replicas
    base = definition("product-scaling")
    experiment = dataclasses.replace(base, options={
        **base.options, "replicas": order(replicas, ctx.settings.reps),
        "counter_case": None, "open_loop": None})
    pool.ensure(dict(base.stack))
    ctx.log(f"  steps (product replicas): {order(replicas, ctx.settings.reps)}")
    result = run_experiment(experiment, duration_scale=ctx.settings.scaling_scale,
                            **experiment_kwargs(pool))
    summary = result.summary
    reps = repetitions(summary.get("steps", []), len(replicas))
    top = max(replicas)
    views = [{n: _step_view(s) for n, s in rep.items()} for rep in reps]
    per_count: dict[str, Any] = {}
    for count in replicas:
        speedups = [ratio(rep.get(count, {}).get("ok_rps"), rep.get(1, {}).get("ok_rps"))
                    for rep in reps]
        per_count[str(count)] = {
            "ok_rps": median([rep.get(count, {}).get("ok_rps") for rep in reps]),
            "speedup_vs_one": median(speedups), "speedup_reps": speedups,
            "efficiency_vs_linear": None if median(speedups) is None
            else median(speedups) / count,
            "p95_ms": median([rep.get(count, {}).get("p95_ms") for rep in reps]),
        }
    limit = _limit(reps, top)
    top_figures = per_count[str(top)]
    targets = []
    for count in replicas[1:]:
        figures = per_count[str(count)]
        wanted = 2.5 if count == 3 else None
        target = Target(NAME, f"{count} product replicas ÷ 1 replica (throughput)",
                        ">=" if wanted else "", wanted, unit="x", load_generator=LOAD_GENERATOR)
        detail = (f"{_fmt(figures['ok_rps'])} vs {_fmt(per_count['1']['ok_rps'])} req/s; "
                  f"per rep {', '.join(_fmt(v) for v in figures['speedup_reps'])}; efficiency "
                  f"vs linear {_fmt(figures['efficiency_vs_linear'])}")
        if count == top:
            detail += f"; limited by: {limit}"
        targets.append(target.judge(figures["speedup_vs_one"], detail))
    notes = [f"Limiting resource at {top} replicas: {limit}.",
             f"Capacity: {summary.get('capacity')}."]
    if not summary.get("capacity_bounded"):
        notes.append("The stack was not capacity-bounded (no CPU quotas could be applied): a "
                     "scaling figure on 2 shared cores then says nothing about replicas.")
    return BenchResult(NAME, TITLE, targets, raw={
        "per_replicas": per_count, "steps": views, "capacity": summary.get("capacity"),
        "capacity_bounded": summary.get("capacity_bounded"), "report": str(result.run_dir),
        "duration_scale": ctx.settings.scaling_scale, "top_efficiency": top_figures[
            "efficiency_vs_linear"]}, load_generator=LOAD_GENERATOR,
        pinning="not pinned: each product replica under a 0.25-CPU cgroup quota, gateway 1.0, "
                "Locust unconstrained", notes=notes)


def _limit(reps: list[dict[int, dict[str, Any]]], top: int) -> str:
    steps = [rep[top] for rep in reps if top in rep]
    if not steps:
        return "not measured"
    named = {s.get("limited_by") for s in steps}
    products = [v for s in steps for k, v in (s.get("cpu") or {}).items()
                if k.startswith("product")]
    utilisation = median([p.get("utilisation") for p in products])
    throttled = median([p.get("throttled_s") for p in products])
    gateway = median([(s.get("cpu") or {}).get("gateway", {}).get("utilisation") for s in steps])
    locust = median([s.get("locust_cpu_share") for s in steps])
    return (f"product replicas used {_fmt(utilisation)} of their CPU quota and were throttled "
            f"{_fmt(throttled)} s each per step (medians), while the gateway used "
            f"{_fmt(gateway)} of its 1.0-CPU quota and Locust {_fmt(locust)} of a core; the "
            f"experiment's own reading per step: {'; '.join(sorted(str(n) for n in named))}")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
