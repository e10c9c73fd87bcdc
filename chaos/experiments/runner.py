"""Run an experiment: stack, seed, load, faults, probes, rollback, verdicts.

    result = run_experiment("cart-outage", resilience=False, duration_scale=0.5)
    result.holds, result.run_dir, result.summary

The run folder gets summary.json and the raw measurements; the report drawn from them
(plots, report.html) is the reports layer's: `chaos.reports.write_run_report(result)`.

Locust runs in a child process (it monkey-patches with gevent); faults and probes run on
threads here. Rollback (every toxic cleared, every proxy enabled) always runs, also on
Ctrl-C. A run states its load mode (closed or open loop), whether resilience was on, and
whether capacity was bounded by CPU quotas.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.experiments import integrity
from chaos.experiments.measurements import Request, group_table, read_requests
from chaos.experiments.model import Experiment, find
from chaos.experiments.probes import ProbeSampler
from chaos.experiments.progress import ProgressFile, check_no_other_run, default_progress_path
from chaos.experiments.schedule import FaultSchedule, windows_from_events
from chaos.experiments.stack import LocalStack, StackInfo
from chaos.experiments.verdicts import RunData, Verdict, hypothesis_holds, judge
from loadtests.accounts import write_tokens
from loadtests.runner import LoadProcess, LoadSpec

LOAD_KEYS = ("scenario", "shape", "users", "duration", "spawn_rate", "rate")


@dataclass
class RunRecord:
    """What a run measured over time, for its report: requests, probe samples, fault windows."""

    requests: list[Request] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    traces_dir: Path | None = None


@dataclass
class RunResult:
    """What `run_experiment` hands back."""

    name: str
    holds: bool | None
    run_dir: Path
    summary: dict[str, Any]
    verdicts: list[Verdict] = field(default_factory=list)
    record: RunRecord = field(default_factory=RunRecord)


def load_spec(experiment: Experiment, out_dir: Path, host: str, **overrides: Any) -> LoadSpec:
    """The Locust spec of an experiment's `load:` section."""
    load = {**experiment.load, **overrides}
    shape_params = {k: v for k, v in load.items() if k not in LOAD_KEYS}
    return LoadSpec(scenario=load.get("scenario", "mixed"), out_dir=str(out_dir), host=host,
                    shape=load.get("shape"), users=load.get("users"),
                    duration=load.get("duration"), spawn_rate=load.get("spawn_rate"),
                    rate=load.get("rate"), shape_params=shape_params)


def measure(experiment: Experiment, spec: LoadSpec, info: StackInfo, run_dir: Path, *,
            log: Callable[[str], None] = print, echo: bool = True,
            progress: ProgressFile | None = None) -> dict[str, Any]:
    """Run the load with faults and probes; everything measured, rollback done."""
    from chaos.faults import Faults

    progress = progress or ProgressFile(None)
    faults = Faults(info.toxiproxy_url)
    rollback_error = None
    try:
        faults.clear_all()
    except Exception as exc:  # noqa: BLE001 - a missing proxy shows in the verdicts
        log(f"warning: cannot reach the fault proxy at {info.toxiproxy_url}: {exc}")
    process = LoadProcess(spec, echo=echo).start()
    schedule = sampler = None
    started = time.time()
    try:
        started = process.wait_started()
        progress.load_started(started)
        schedule = FaultSchedule(experiment.faults, faults, started, log=log,
                                 on_change=progress.faults).start()
        sampler = ProbeSampler(experiment.probes, info.gateway_url, started=started,
                               token=info.probe_token, hot_slug=spec.hot_slug or "flash-sale",
                               admin=info.gateway_admin_url or None).start()
        load = process.wait()
    finally:
        process.stop()
        if schedule is not None:
            rollback_error = schedule.rollback()
        else:
            try:
                faults.clear_all()
            except Exception as exc:  # noqa: BLE001
                rollback_error = str(exc)
        samples = sampler.stop() if sampler is not None else []
        log("rollback: every toxic cleared, every proxy enabled" if rollback_error is None
            else f"ROLLBACK FAILED: {rollback_error}")
    try:
        events = faults.client.events(since=started - 1)
        event_windows = windows_from_events(events, started)
    except Exception:  # noqa: BLE001 - the real Toxiproxy has no /events
        events, event_windows = [], []
    (run_dir / "probes.json").write_text(json.dumps(samples))
    return {"load": load, "started": started, "samples": samples,
            "faults": schedule.windows() if schedule else [], "fault_events": events,
            "event_windows": event_windows, "rollback": rollback_error or "ok"}


def run_experiment(name: str | Experiment, *, resilience: bool | None = None,
                   product_replicas: int | None = None, duration_scale: float = 1.0,
                   seed: int | None = None, db: str | None = None,
                   keep_stack: bool = False, reports_root: str | Path | None = None,
                   stack: LocalStack | None = None, log: Callable[[str], None] = print,
                   echo: bool = True, progress: ProgressFile | None = None) -> RunResult:
    """Run one experiment (standard, integrity, scaling or nemesis); its summary and
    measurements. Its progress goes to `progress` (default: var/experiment-progress.json) as
    it runs. `seed` picks a nemesis schedule (random, and printed, when None); `db` the
    stack's database (sqlite or a URL template with {service})."""
    from chaos.experiments.runs import new_run_dir

    experiment = find(name) if isinstance(name, str) else name
    experiment = experiment.scaled(duration_scale)
    stack = stack or LocalStack()
    options = dict(experiment.stack)
    if resilience is not None:
        options["resilience"] = resilience
    if product_replicas is not None:
        options["product_replicas"] = product_replicas
    if db is not None:
        options["db"] = db
    progress = progress or ProgressFile(default_progress_path())
    check_no_other_run(progress.path)
    label = experiment.name + ("" if options.get("resilience", True) else "-resilience-off")
    run_dir = new_run_dir(label, reports_root)
    log(f"== {experiment.name} v{experiment.version} "
        f"(resilience {'on' if options.get('resilience', True) else 'off'}) → {run_dir}")
    progress.begin(experiment, bool(options.get("resilience", True)), run_dir)
    started_stack = False
    try:
        progress.phase("starting the stack")
        started_stack = stack.ensure(options, log=log)
        if experiment.kind == "scaling":
            from chaos.experiments.scaling import run_scaling

            progress.phase("scaling steps")
            summary, verdicts = run_scaling(experiment, stack, options, run_dir, log=log,
                                            echo=echo)
            for verdict in verdicts:
                progress.verdict(verdict)
            record = RunRecord()
        elif experiment.kind == "nemesis":
            from chaos.experiments.nemesis_run import run_nemesis

            summary, verdicts, record = run_nemesis(
                experiment, stack, run_dir, seed=random_seed() if seed is None else seed,
                log=log, progress=progress)
        else:
            summary, verdicts, record = _run_standard(experiment, stack, options, run_dir,
                                                      log=log, echo=echo, progress=progress)
    except BaseException as exc:
        progress.finish(None, error=f"{type(exc).__name__}: {exc}" if str(exc)
                        else type(exc).__name__)
        raise
    finally:
        if started_stack and not keep_stack:
            stack.down(log=log)
    holds = hypothesis_holds(verdicts) if verdicts else None
    progress.finish(holds)
    summary["hypothesis_holds"] = holds
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return RunResult(experiment.name, holds, run_dir, summary, verdicts, record)


def random_seed() -> int:
    """A fresh seed for a run that was given none (printed with its schedule, to replay it)."""
    return int.from_bytes(os.urandom(3), "big")


def _run_standard(experiment: Experiment, stack: LocalStack, options: dict[str, Any],
                  run_dir: Path, *, log: Callable[[str], None], echo: bool,
                  progress: ProgressFile) -> tuple[dict[str, Any], list[Verdict], RunRecord]:
    progress.phase("preparing accounts")
    info = stack.info()
    accounts = int(experiment.options.get("accounts", 0)) or max(
        40, int(experiment.load.get("users", 20)))
    tokens = stack.tokens(accounts, log=log)
    tokens_file = write_tokens(run_dir / "tokens.json", tokens)
    info.probe_token = next(iter(tokens.values()), None)
    spec = load_spec(experiment, run_dir, info.gateway_url)
    spec.tokens_file = str(tokens_file)
    spec.seed_file = info.seed_file
    sale = None
    if experiment.kind == "integrity":
        sale = integrity.prepare_sale(info, int(experiment.options.get("stock", 25)),
                                      admin_token=stack.admin_token(), log=log)
        spec.hot_slug = sale["slug"]
    measured = measure(experiment, spec, info, run_dir, log=log, echo=echo, progress=progress)
    progress.phase("judging")
    started = measured["started"]
    requests = read_requests(run_dir / "requests.csv", started)
    audit: dict[str, Any] = {}
    if sale is not None:
        audit = integrity.audit(info, sale, tokens, run_dir / "orders.jsonl", log=log)
    data = RunData(requests, experiment.windows, measured["samples"], measured["faults"], audit)
    verdicts = []
    for check in experiment.hypothesis:  # each verdict shown as soon as it is decided
        verdicts.append(judge(check, data))
        progress.verdict(verdicts[-1])
    load = measured["load"]
    summary = {
        "experiment": experiment.name, "version": experiment.version,
        "description": experiment.description, "definition": experiment.to_document(),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "started": started, "resilience": options.get("resilience", True),
        "product_replicas": info.product_replicas, "capacity": info.capacity_text,
        "capacity_bounded": info.capacity_bounded, "stack": info.describe(),
        "mode": load["mode"], "scenario": load["scenario"],
        "offered_rate": load.get("offered_rate"), "achieved_rate": round(load["achieved_rate"], 2),
        "requests": load["requests"], "load": load, "windows": experiment.windows,
        "faults": measured["faults"], "fault_events": measured["event_windows"],
        "rollback": measured["rollback"],
        "groups": group_table(requests, experiment.windows),
        "verdicts": [v.as_dict() for v in verdicts],
        "hypothesis_holds": hypothesis_holds(verdicts), "audit": audit,
    }
    if audit:
        summary["audit_table"] = {"headers": ["measure", "value"],
                                  "rows": [[k, v] for k, v in audit.items()
                                           if not isinstance(v, list | dict)]}
    shading = measured["event_windows"] or measured["faults"]
    for window in shading:
        window.setdefault("label", f"{window['target']} {window['kind']}")
    _print_verdicts(experiment.name, verdicts, log)
    return summary, verdicts, RunRecord(requests, measured["samples"], shading, info.traces_dir)


def _print_verdicts(name: str, verdicts: list[Verdict], log: Callable[[str], None]) -> None:
    for verdict in verdicts:
        log(f"  [{verdict.status:>12}] {verdict.name}: {verdict.detail}")
    holds = hypothesis_holds(verdicts)
    log(f"  {name}: hypothesis {'HOLDS' if holds else 'DOES NOT HOLD'}")
