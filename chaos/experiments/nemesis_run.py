"""`checkout-nemesis`: a flash sale of careful shoppers under a seeded random schedule of
crashes and network faults on checkout, then a bounded settle and the audit.

    summary, verdicts, record = run_nemesis(experiment, stack, options, run_dir, seed=7)

The steps: shoppers log in; a fresh hot product with `stock` units; the schedule of `seed`
(`chaos.experiments.nemesis`) printed and saved; shoppers buy (`loadtests.careful`) while
`FaultSchedule` applies the faults (network faults through the fault proxy, crashes through
`local_stack.crash`; the stack's keeper restarts a killed instance); rollback; then up to
`settle_s` (60) seconds in which the audit is taken again every few seconds until it holds;
the verdicts are the definition's `audit` clauses on the last audit taken.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.experiments import integrity
from chaos.experiments.checkout_audit import audit_or_error, checkout_audit
from chaos.experiments.measurements import group_table, read_requests
from chaos.experiments.model import Experiment
from chaos.experiments.nemesis import CRASHES, NemesisParams, NemesisSchedule, plan_nemesis
from chaos.experiments.probes import ProbeSampler
from chaos.experiments.progress import ProgressFile
from chaos.experiments.schedule import FaultSchedule
from chaos.experiments.stack import LocalStack
from chaos.experiments.verdicts import RunData, Verdict, hypothesis_holds, judge
from loadtests.careful import run_shoppers, shopping_plans

DEFAULTS = {"shoppers": 60, "purchases": 3, "stock": 400, "max_quantity": 3,
            "settle_s": 60.0, "audit_every_s": 3.0, "purchase_s": 90.0, "tail_s": 60.0}


class NemesisFaults:
    """`chaos.faults.Faults` plus crashes: `apply("order", "kill_instance")` SIGKILLs an
    instance of the stack in `var`; every other fault goes to the fault proxy."""

    def __init__(self, faults: Any, var: Path, rng: random.Random) -> None:
        self.faults, self.var, self.rng = faults, var, rng

    def apply(self, service: str, kind: str, **params: Any) -> list[str]:
        from local_stack.crash import kill_instance, kill_worker

        if kind == "kill_worker":
            return [f"pid {p}" for p in kill_worker(self.var, service, self.rng)]
        if kind == "kill_instance":
            return [f"pid {kill_instance(self.var, service, self.rng)}"]
        return list(self.faults.apply(service, kind, **params))

    def undo(self, service: str, kind: str, stream: str = "downstream") -> None:
        if kind not in CRASHES:
            self.faults.undo(service, kind, stream)

    def clear_all(self) -> None:
        self.faults.clear_all()

    def announce_until(self, proxies: Any, fault: str, until: float) -> bool:
        return self.faults.announce_until(proxies, fault, until)


def nemesis_settings(experiment: Experiment, seed: int) -> tuple[dict[str, Any], NemesisSchedule]:
    """The run's options (DEFAULTS under the definition's) and its schedule. The faults last
    the load's `duration` (scaled with `--duration-scale`)."""
    options = {**DEFAULTS, **experiment.options}
    params = {k: tuple(v) if isinstance(v, list) else v
              for k, v in (options.get("nemesis") or {}).items()}
    params["duration"] = float(experiment.duration)
    return options, plan_nemesis(seed, NemesisParams(**params))


def run_nemesis(experiment: Experiment, stack: LocalStack, run_dir: Path, *, seed: int,
                log: Callable[[str], None] = print,
                progress: ProgressFile | None = None) -> tuple[dict[str, Any], list[Verdict],
                                                               Any]:
    """The whole run; (summary, verdicts, RunRecord) as the standard runner returns them."""
    from chaos.experiments.runner import RunRecord
    from chaos.faults import Faults

    progress = progress or ProgressFile(None)
    options, schedule = nemesis_settings(experiment, seed)
    log(f"nemesis schedule, seed {seed} ({len(schedule.steps)} faults; replay with --seed "
        f"{seed}):")
    for line in schedule.describe():
        log(f"  {line}")
    (run_dir / "schedule.json").write_text(json.dumps(schedule.to_json(), indent=2))

    progress.phase("preparing shoppers")
    info = stack.info()
    tokens = stack.tokens(int(options["shoppers"]), log=log)
    sale = integrity.prepare_sale(info, int(options["stock"]), admin_token=stack.admin_token(),
                                  log=log)
    plans = shopping_plans(tokens, seed=seed, purchases=int(options["purchases"]),
                           spread=schedule.params.duration,
                           max_quantity=int(options["max_quantity"]))
    keys_by_buyer = {p.email: {x.key for x in p.purchases} for p in plans}

    faults = NemesisFaults(Faults(info.toxiproxy_url), stack.var_dir,
                           random.Random(f"{seed}:replicas"))
    faults.clear_all()
    started = time.time()
    progress.load_started(started)
    runner = FaultSchedule(schedule.steps, faults, started, log=log,
                           on_change=progress.faults).start()
    sampler = ProbeSampler(experiment.probes, info.gateway_url, started=started,
                           token=next(iter(tokens.values())), hot_slug=sale["slug"]).start()
    rollback = None
    try:
        progress.phase("flash sale under the nemesis")
        shopping = run_shoppers(info.gateway_url, sale["id"], plans, run_dir, seed=seed,
                                deadline_s=schedule.params.duration + float(options["tail_s"]),
                                purchase_s=float(options["purchase_s"]), started=started)
        # Every planned fault gets its turn, even when the shoppers finished early.
        runner.wait(started + schedule.end - time.time() + 5)
    finally:
        rollback = runner.rollback()
        samples = sampler.stop()
    faults_over = time.time() - started
    log("rollback: every toxic cleared, every proxy enabled" if rollback is None
        else f"ROLLBACK FAILED: {rollback}")
    log(f"shoppers: {shopping.summary()}")

    progress.phase("settling, then the audit")
    audit, settled_after = settle(
        lambda: checkout_audit(info.gateway_url, sale, tokens, keys_by_buyer,
                               run_dir / "orders.jsonl"),
        experiment, float(options["settle_s"]), float(options["audit_every_s"]), log=log)
    requests = read_requests(run_dir / "requests.csv", started)
    windows = {"faults": (0.0, max(schedule.end, 0.1)),
               "after": (max(schedule.end, 0.1), max(faults_over, schedule.end) + 0.2)}
    data = RunData(requests, windows, samples, runner.windows(), audit)
    verdicts = []
    for check in experiment.hypothesis:
        verdicts.append(judge(check, data))
        progress.verdict(verdicts[-1])
    for verdict in verdicts:
        log(f"  [{verdict.status:>12}] {verdict.name}: {verdict.detail}")
    log(f"  {experiment.name}: hypothesis {'HOLDS' if hypothesis_holds(verdicts) else 'DOES NOT HOLD'}")
    state = stack.state()
    restarts = {i.name: i.restarts for i in state.instances.values()} if state else {}
    shading = [dict(w, end=w["start"]) if w["kind"] in CRASHES else w for w in runner.windows()]
    summary = {
        "experiment": experiment.name, "version": experiment.version,
        "description": experiment.description, "definition": experiment.to_document(),
        "kind": "nemesis", "seed": seed, "schedule": schedule.to_json(),
        "schedule_lines": schedule.describe(),
        "schedule_table": schedule_table(runner.records),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "started": started, "resilience": info.resilience, "database": stack_db(stack),
        "product_replicas": info.product_replicas, "capacity": info.capacity_text,
        "capacity_bounded": info.capacity_bounded, "stack": info.describe(),
        "mode": "closed-loop", "scenario": "careful shoppers",
        "requests": len(requests), "shopping": shopping.summary(),
        "purchases": [dataclasses.asdict(r) for r in shopping.results],
        "windows": windows, "faults": shading, "rollback": rollback or "ok",
        "restarts": restarts, "settle_limit_s": float(options["settle_s"]),
        "faults_ended_s": round(schedule.end, 1),
        "shoppers_done_s": round(shopping.finished - started, 1),
        "settled_after_s": settled_after, "groups": group_table(requests, windows),
        "verdicts": [v.as_dict() for v in verdicts], "audit": audit,
        "audit_table": {"headers": ["measure", "value"],
                        "rows": [[k, v] for k, v in audit.items()
                                 if not isinstance(v, list | dict)]},
        "notes": [f"schedule of seed {seed}: `breakwater experiment run {experiment.name} "
                  f"--seed {seed}` replays the same faults at the same times",
                  f"faults from {schedule.params.start:g} s to {schedule.end:.1f} s; the "
                  f"shoppers' last purchase ended at {shopping.finished - started:.1f} s; the "
                  + (f"audit held {settled_after:g} s after that" if settled_after is not None
                     else f"audit did not hold within {float(options['settle_s']):g} s after "
                     "that")],
    }
    return summary, verdicts, RunRecord(requests, samples, shading, info.traces_dir)


def settle(audit: Callable[[], dict[str, Any]], experiment: Experiment, limit_s: float,
           every_s: float, *, log: Callable[[str], None] = print,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> tuple[dict[str, Any], float | None]:
    """Take the audit until the hypothesis holds on it or `limit_s` passes; the last audit and
    the seconds it took to hold (None if it never did)."""
    began = clock()
    while True:
        result = audit_or_error(audit)
        if "error" not in result:
            verdicts = [judge(c, RunData([], {}, audit=result)) for c in experiment.hypothesis]
            if hypothesis_holds(verdicts):
                return result, round(clock() - began, 1)
        elapsed = clock() - began
        if elapsed >= limit_s:
            log(f"not settled after {limit_s:g} s: {_brief(result)}")
            return result, None
        sleep(min(every_s, limit_s - elapsed))


def _brief(audit: dict[str, Any]) -> str:
    keys = ("error", "oversold", "unaccounted_units", "unresolved_orders",
            "keys_with_two_orders", "told_confirmed_not_confirmed", "confirmed_ratio")
    return ", ".join(f"{k}={audit[k]}" for k in keys if k in audit)


def schedule_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The schedule as carried out: planned times, applied times, targets, errors."""
    rows = [[r["planned_start"], r["planned_end"], r["label"], r["start"], r["end"],
             ", ".join(r["proxies"]), r["error"] or ""] for r in records]
    return {"headers": ["at s", "until s", "fault", "applied s", "removed s", "hit", "error"],
            "rows": rows}


def stack_db(stack: LocalStack) -> str:
    """The database the stack runs on, in words (sqlite, or the URL template)."""
    state = stack.state()
    return str((state.options or {}).get("db", "sqlite")) if state else "unknown"
