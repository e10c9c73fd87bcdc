"""product-scaling: the same flash sale against 1, 2, 3 … product replicas, and two controls.

Per step it measures successful requests a second and p95 of the catalog in the hold
window, and the CPU each instance used and was throttled in that same window (the
supervisor's cgroup stats, sampled twice a second),
plus the load generator's own CPU. "What limited this step" is read from those: product
using its whole quota with throttled time rising means the product quota; the gateway or
Locust near a full core means they did. Without CPU quotas the verdicts are INCONCLUSIVE and
the report says "not capacity-bounded": on a 2-core host unbounded replicas share the same
two cores, and no scaling claim can be made.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.experiments.cpu import CpuSampler
from chaos.experiments.measurements import read_requests, select, window_stats
from chaos.experiments.model import Experiment
from chaos.experiments.verdicts import FAIL, INCONCLUSIVE, PASS, Verdict, hypothesis_holds
from loadtests.runner import run_load_in_subprocess


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_delta(before: dict[str, Any], after: dict[str, Any], seconds: float
               ) -> dict[str, dict[str, Any]]:
    result = {}
    for name, now in after.items():
        then = before.get(name, {})
        if "error" in now or now.get("usage_s") is None:
            continue
        used = now["usage_s"] - (then.get("usage_s") or 0.0)
        throttled = (now.get("throttled_s") or 0.0) - (then.get("throttled_s") or 0.0)
        result[name] = {"cpus": now.get("cpus"), "used_s": round(used, 3),
                        "throttled_s": round(throttled, 3),
                        "utilisation": round(used / (now["cpus"] * seconds), 3)
                        if now.get("cpus") else None}
    return result


def limiter(step: dict[str, Any]) -> str:
    """What limited a step, in words, from its CPU figures."""
    cpu = step.get("cpu") or {}
    product = [v for k, v in cpu.items() if k.startswith("product")]
    if product and all((v.get("utilisation") or 0) >= 0.8 and v["throttled_s"] > 0
                       for v in product):
        return "product CPU quota (every replica at its quota, throttled time rising)"
    gateway = cpu.get("gateway")
    if gateway and (gateway.get("utilisation") or 0) >= 0.85:
        return "gateway CPU"
    if (step.get("locust_cpu_share") or 0) >= 0.9:
        return "load generator (Locust near one full core)"
    if not cpu:
        return "unknown (no cgroup stats: not capacity-bounded)"
    return "not CPU-bound (offered load below capacity, or latency elsewhere)"


def _step(experiment: Experiment, stack: Any, info: Any, run_dir: Path, label: str, *,
          users: int | None = None, rate: float | None = None, scenario: str | None = None,
          duration: float | None = None, echo: bool) -> dict[str, Any]:
    from chaos.experiments.runner import load_spec

    out = run_dir / label
    overrides: dict[str, Any] = {}
    if users is not None:
        overrides["users"] = users
    if rate is not None:
        overrides.update(rate=rate, shape="rate", scenario=scenario or "catalog",
                         duration=duration or 12, warmup=2)
        for key in ("baseline_users", "baseline", "jump", "hold", "after"):
            overrides[key] = None
    spec = load_spec(experiment, out, info.gateway_url, **overrides)
    spec.shape_params = {k: v for k, v in spec.shape_params.items() if v is not None}
    spec.seed_file = info.seed_file
    cpu_before, began = _children_cpu(), time.time()
    with CpuSampler(stack, every=0.5) as sampler:
        load = run_load_in_subprocess(spec, echo=echo)
    seconds = time.time() - began
    cpu_after = _children_cpu()
    requests = read_requests(out / "requests.csv", load["started"])
    if rate is not None:
        start, end = 2.0, load["profile"]["duration_s"]
    else:
        start, end = experiment.windows.get("hold", (0.0, load["profile"]["duration_s"]))
    before, after, window_s = sampler.around(load["started"] + start, load["started"] + end)
    stats = window_stats(select(requests, ["catalog"], start, end), end - start)
    step = {"label": label, "users": spec.users, "offered_rate": rate,
            "mode": load["mode"], "requests": stats["requests"],
            "ok_rps": round(stats["ok_rps"], 2), "p50_ms": stats["p50_ms"],
            "p95_ms": stats["p95_ms"], "p99_ms": stats["p99_ms"],
            "error_rate": round(stats["error_rate"], 4), "window": [start, end],
            "cpu": _cpu_delta(before, after, window_s), "cpu_window_s": round(window_s, 2),
            "locust_cpu_s": round(cpu_after - cpu_before, 2),
            "locust_cpu_share": round((cpu_after - cpu_before) / max(seconds, 1e-9), 3),
            "report_dir": str(out.relative_to(run_dir))}
    step["limited_by"] = limiter(step)
    return step


def run_scaling(experiment: Experiment, stack: Any, options: dict[str, Any], run_dir: Path, *,
                log: Callable[[str], None] = print, echo: bool = True
                ) -> tuple[dict[str, Any], list[Verdict]]:
    """The scaling steps, the counter-case and the open-loop check; summary and verdicts."""
    settings = experiment.options
    info = stack.info()
    per_replica = int(settings.get("users_per_replica", 8))
    bound = float(settings.get("p95_bound_ms", 400))
    steps: list[dict[str, Any]] = []
    notes = []
    for replicas in settings.get("replicas", [1, 2, 3]):
        stack.scale("product", replicas, log=log)
        step = _step(experiment, stack, info, run_dir, f"product-{replicas}",
                     users=per_replica * replicas, echo=echo)
        step.update(kind="product", replicas=replicas)
        steps.append(step)
        log(f"  {replicas} product replica(s): {step['ok_rps']} req/s, p95 {step['p95_ms']} ms, "
            f"limited by {step['limited_by']}")
    counter = settings.get("counter_case")
    if counter:
        try:
            stack.scale("product", 1, log=log)
            stack.scale(counter["service"], counter["replicas"], log=log)
            step = _step(experiment, stack, info, run_dir,
                         f"{counter['service']}-{counter['replicas']}",
                         users=per_replica * max(settings.get("replicas", [3])), echo=echo)
            step.update(kind=counter["service"], replicas=counter["replicas"])
            steps.append(step)
            log(f"  counter-case, {counter['service']} x{counter['replicas']}: "
                f"{step['ok_rps']} req/s, p95 {step['p95_ms']} ms")
        except Exception as exc:  # noqa: BLE001 - a control that cannot run is reported
            notes.append(f"counter-case skipped: {exc}")
        finally:
            try:
                stack.scale(counter["service"], 1, log=log)
            except Exception as exc:  # noqa: BLE001
                notes.append(f"could not scale {counter['service']} back: {exc}")
    open_loop = settings.get("open_loop")
    one = next((s for s in steps if s["kind"] == "product" and s["replicas"] == 1), None)
    if open_loop and one and one["ok_rps"]:
        # A sweep of offered rates (multiples of one replica's measured capacity) per replica
        # count; the highest rate is the one the verdicts judge.
        factors = [float(f) for f in open_loop.get("rates_vs_one_replica")
                   or [open_loop.get("rate_vs_one_replica", 1.6)]]
        judged = max(factors)
        for replicas in open_loop.get("replicas", [1, 3]):
            stack.scale("product", replicas, log=log)
            for factor in factors:
                rate = round(factor * one["ok_rps"], 1)
                step = _step(experiment, stack, info, run_dir,
                             f"open-loop-product-{replicas}-at-{factor:g}x", rate=rate,
                             duration=float(open_loop.get("duration", 12)), echo=echo)
                step.update(kind="open-loop", replicas=replicas, load_factor=factor,
                            judged=factor == judged)
                steps.append(step)
                log(f"  open loop at {rate} req/s offered ({factor:g}x one replica), "
                    f"{replicas} replica(s): achieved {step['ok_rps']} req/s, "
                    f"p95 {step['p95_ms']} ms")
    verdicts = scaling_verdicts(steps, settings, info.capacity_bounded, bound)
    rows = [[s["label"], s.get("replicas"), s.get("mode"), s.get("offered_rate"), s["ok_rps"],
             _ratio(s, one), s["p95_ms"], s["error_rate"], _product_cpu(s), s["limited_by"]]
            for s in steps]
    summary = {
        "experiment": experiment.name, "version": experiment.version,
        "description": experiment.description, "definition": experiment.to_document(),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "resilience": options.get(
            "resilience", True), "capacity": info.capacity_text,
        "capacity_bounded": info.capacity_bounded, "stack": info.describe(),
        "mode": "closed-loop steps + open-loop check", "scenario": experiment.load["scenario"],
        "steps": steps, "p95_bound_ms": bound, "verdicts": [v.as_dict() for v in verdicts],
        "hypothesis_holds": hypothesis_holds(verdicts), "notes": notes + [
            "per-request work: product's DB read plus PRODUCT_SIMULATED_CPU_MS="
            f"{((options.get('env') or {}).get('product') or {}).get('PRODUCT_SIMULATED_CPU_MS', 0)}"
            " ms of CPU per read; "
            "the limiting resource is product's CPU quota when the stack is capacity-bounded"],
        "scaling_table": {"headers": ["step", "replicas", "mode", "offered req/s",
                                      "achieved req/s", "x one replica", "p95 ms",
                                      "error rate", "product CPU used/throttled s",
                                      "limited by"], "rows": rows},
    }
    for verdict in verdicts:
        log(f"  [{verdict.status:>12}] {verdict.name}: {verdict.detail}")
    return summary, verdicts


def _ratio(step: dict[str, Any], one: dict[str, Any] | None) -> float | None:
    if not one or not one["ok_rps"] or step.get("kind") == "open-loop":
        return None
    return round(step["ok_rps"] / one["ok_rps"], 2)


def _product_cpu(step: dict[str, Any]) -> str:
    product = {k: v for k, v in (step.get("cpu") or {}).items() if k.startswith("product")}
    if not product:
        return "n/a"
    return ", ".join(f"{k}: {v['used_s']}/{v['throttled_s']}" for k, v in sorted(product.items()))


def scaling_verdicts(steps: list[dict[str, Any]], settings: dict[str, Any],
                     capacity_bounded: bool, bound: float) -> list[Verdict]:
    """Targets per replica count, the p95 bound, the counter-case and the open-loop check."""
    verdicts = []
    product = {s["replicas"]: s for s in steps if s["kind"] == "product"}
    one = product.get(1)
    unbounded = "not capacity-bounded: no CPU quotas in force, so no scaling claim is made"
    for replicas, target in sorted((int(k), float(v)) for k, v in
                                   (settings.get("targets") or {}).items()):
        step = product.get(replicas)
        name = f"{replicas} replicas >= {target}x one replica's throughput (p95 <= {bound:g} ms)"
        if step is None or one is None or not one["ok_rps"]:
            verdicts.append(Verdict(name, "scaling", INCONCLUSIVE, None, target, "not measured"))
            continue
        ratio = step["ok_rps"] / one["ok_rps"]
        within = (step["p95_ms"] or 0) <= bound and (one["p95_ms"] or 0) <= bound
        status = PASS if ratio >= target and within else FAIL
        detail = (f"{step['ok_rps']} vs {one['ok_rps']} req/s = {ratio:.2f}x; p95 "
                  f"{step['p95_ms']} / {one['p95_ms']} ms; limited by {step['limited_by']}")
        if not capacity_bounded:
            status, detail = INCONCLUSIVE, f"{unbounded}; {detail}"
        verdicts.append(Verdict(name, "scaling", status, round(ratio, 3), target, detail,
                                {"step": step, "one": one}))
    counter = next((s for s in steps if s["kind"] not in ("product", "open-loop")), None)
    if counter is not None and one is not None and one["ok_rps"]:
        gain = counter["ok_rps"] / one["ok_rps"]
        status = PASS if gain <= 1.2 else FAIL
        detail = (f"{counter['kind']} x{counter['replicas']}: {counter['ok_rps']} req/s vs "
                  f"{one['ok_rps']} with one product replica ({gain:.2f}x)")
        if not capacity_bounded:
            status, detail = INCONCLUSIVE, f"{unbounded}; {detail}"
        verdicts.append(Verdict(f"scaling {counter['kind']} instead gains nothing (<= 1.2x)",
                                "scaling", status, round(gain, 3), 1.2, detail))
    # The claim at the judged rate: one replica falls short, the most replicas keep up; the
    # counts in between are drawn in the plot, not judged.
    judged = [s for s in steps if s["kind"] == "open-loop" and s.get("judged", True)]
    most = max((s["replicas"] for s in judged), default=1)
    for step in (s for s in judged if s["replicas"] in (1, most)):
        offered = step["offered_rate"] or 0
        keeps_up = step["ok_rps"] >= 0.95 * offered and (step["p95_ms"] or 0) <= bound
        want = step["replicas"] > 1
        name = (f"open loop, {step['replicas']} replica(s) at {offered} req/s offered: "
                + ("keeps up" if want else "falls short (achieved < offered or p95 climbs)"))
        status = PASS if keeps_up == want else FAIL
        detail = (f"offered {offered}, achieved {step['ok_rps']} req/s, p95 {step['p95_ms']} ms"
                  f" (bound {bound:g})")
        if not capacity_bounded:
            status, detail = INCONCLUSIVE, f"{unbounded}; {detail}"
        verdicts.append(Verdict(name, "open_loop", status, step["ok_rps"], offered, detail))
    return verdicts
