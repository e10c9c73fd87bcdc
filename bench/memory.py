"""Benchmark: resident memory of the whole local stack (every process `breakwater up` starts).

The stack the other benchmarks left running (one replica per service; the experiments' CPU
quotas change no process's memory), or else the default local stack started by the
supervisor in the bench's private var folder, is warmed with catalog reads through the
gateway (every worker has imported and served what it serves), then every process of every
instance's process group is read from /proc: VmRSS (the target: the sum, pessimistic, since
forked workers share pages with their master) and Pss (shared pages divided among sharers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from bench.common import Context
from bench.stats import BenchResult, Target

NAME = "memory"
TITLE = "Resident memory of the whole local stack"
TARGET_MB = 600.0
WARM_READS = 50
GENERATOR = f"none (idle stack after {WARM_READS} catalog reads through the gateway)"


def status_kb(text: str, field: str) -> int | None:
    """The value in kB of `field` (`VmRSS`, `Pss`...) in /proc status or smaps_rollup text."""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def process_memory(pid: int, proc: Path = Path("/proc")) -> dict[str, Any] | None:
    """Name, RSS and PSS (kB) of one process; None when it is gone."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    try:
        rollup = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        rollup = ""
    name = next((line.split(None, 1)[1].strip() for line in status.splitlines()
                 if line.startswith("Name:") and len(line.split()) > 1), "")
    return {"pid": pid, "name": name, "rss_kb": status_kb(status, "VmRSS"),
            "pss_kb": status_kb(rollup, "Pss")}


def totals(by_instance: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Sums in MB over every process, per instance and overall."""
    per = {}
    for name, processes in by_instance.items():
        per[name] = {"processes": len(processes),
                     "rss_mb": sum(p["rss_kb"] or 0 for p in processes) / 1024,
                     "pss_mb": sum(p["pss_kb"] or 0 for p in processes) / 1024}
    return {"processes": sum(v["processes"] for v in per.values()),
            "rss_mb": sum(v["rss_mb"] for v in per.values()),
            "pss_mb": sum(v["pss_mb"] for v in per.values()), "instances": per}


def measure(ctx: Context, pool: Any) -> dict[str, Any]:
    """Start (or reuse) the default stack, warm it, read every process's memory."""
    from local_stack.processes import group_members

    stack = pool.stack
    state = stack.state()
    reused = state is not None and stack.running() and len(state.of_service("product")) == 1
    if not reused:
        stack = pool.ensure({})
        state = stack.state()
    session = requests.Session()
    for n in range(WARM_READS):
        session.get(f"{state.gateway_url}/api/v1/products/product-{n % 20 + 1}", timeout=10)
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for name, instance in sorted(state.instances.items()):
        found = [process_memory(pid) for pid in group_members(instance.pid) or [instance.pid]]
        by_instance[name] = [p for p in found if p is not None]
    result = totals(by_instance)
    result["options"] = state.options
    result["reused_stack"] = reused  # True: after the experiment benchmarks' load
    ctx.log(f"  {result['processes']} processes: RSS {result['rss_mb']:.0f} MB, "
            f"PSS {result['pss_mb']:.0f} MB")
    return result


def evaluate(measured: dict[str, Any]) -> BenchResult:
    """The memory rows."""
    per = measured["instances"]
    biggest = sorted(per.items(), key=lambda kv: -kv[1]["rss_mb"])
    detail = ", ".join(f"{name} {v['rss_mb']:.0f}" for name, v in biggest)
    targets = [
        Target(NAME, f"resident memory (RSS) of the whole local stack, "
               f"{measured['processes']} processes", "<=", TARGET_MB, unit="MB",
               load_generator=GENERATOR).judge(measured["rss_mb"], f"by instance (MB): {detail}"),
        Target(NAME, "proportional memory (PSS: shared pages split among sharers)", "", None,
               unit="MB", load_generator=GENERATOR).judge(measured["pss_mb"]),
    ]
    if "console" in per:
        rest = {k: v for k, v in per.items() if k != "console"}
        targets.append(Target(
            NAME, f"RSS without the live console ({sum(v['processes'] for v in rest.values())} "
            "processes)", "", None, unit="MB", load_generator=GENERATOR).judge(
            sum(v["rss_mb"] for v in rest.values())))
    return BenchResult(NAME, TITLE, targets, raw=measured, load_generator=GENERATOR,
                       pinning="not pinned (the supervisor's default stack)")


def run(ctx: Context, pool: Any) -> BenchResult:
    """Measure and evaluate."""
    return evaluate(measure(ctx, pool))
