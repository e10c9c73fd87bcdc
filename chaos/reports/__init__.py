"""Run reports: `reports/<time>-<name>/` with summary.json, plots, Locust's files, report.html.

    result = run_and_report("cart-outage")          # run an experiment, then draw its report
    write_run_report(result)                        # the report of a run already made
    write_report(run_dir, summary, requests=..., samples=..., faults=...)

`summary` carries every number behind every verdict; this adds the per-second timeline
(timeline.json), the plots and the trace links, then writes summary.json and report.html, and
rewrites the index of every run beside it (`reports/index.html`).
Reports are the top of the experiment stack: they read what experiments measured
(`chaos.experiments`) and nothing below the CLI reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.experiments.measurements import Request, breaker_series, timeline
from chaos.experiments.runner import RunResult, run_experiment


def write_report(run_dir: Path, summary: dict[str, Any], *, requests: Sequence[Request] = (),
                 samples: Sequence[dict[str, Any]] = (), faults: Sequence[dict[str, Any]] = (),
                 traces_dir: Path | None = None, upstreams: Sequence[str] = ("cart", "product",
                                                                           "order", "auth"),
                 extra_plots: Sequence[str] = ()) -> Path:
    """Write plots, summary.json and report.html into `run_dir`; the report.html path."""
    from chaos.reports import plots
    from chaos.reports.html import render
    from chaos.reports.runs import write_index
    from chaos.reports.traces import trace_links

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    series = timeline(requests)
    (run_dir / "timeline.json").write_text(json.dumps(series))
    made = list(extra_plots)
    title = f"{summary.get('experiment', '')} — latency per route group"
    if requests:
        plots.latency_plot(series, faults, run_dir / "latency.png", title)
        plots.throughput_plot(series, faults, run_dir / "throughput.png",
                              summary.get("offered_rate"))
        plots.errors_plot(series, faults, run_dir / "errors.png")
        made += ["latency.png", "throughput.png", "errors.png"]
    gateway_samples = [s for s in samples if s.get("probe") == "gateway_upstreams"]
    if gateway_samples:
        breakers = {u: breaker_series(gateway_samples, u) for u in upstreams}
        end = max((r.t for r in requests), default=max(s["t"] for s in gateway_samples))
        plots.breaker_plot(breakers, faults, run_dir / "breakers.png", end)
        made.append("breakers.png")
    if requests and "traces" not in summary:
        summary["traces"] = trace_links(requests, run_dir, traces_dir=traces_dir)
    summary.setdefault("faults", list(faults))
    summary["files"] = sorted(p.name for p in run_dir.iterdir() if p.is_file()) + ["report.html"]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    locust_files = [name for name in summary["files"]
                    if name.startswith("locust") or name in ("requests.csv", "timeline.json",
                                                             "summary.json", "probes.json")]
    html = run_dir / "report.html"
    html.write_text(render(summary, made, locust_files))
    write_index(run_dir.parent)
    return html


def write_run_report(result: RunResult) -> Path:
    """Plots, summary.json and report.html of an experiment run; the report.html path."""
    from chaos.reports.plots import open_loop_plot, scaling_plot, schedule_plot

    summary, record, run_dir = result.summary, result.record, result.run_dir
    extra: list[str] = []
    if summary.get("kind") == "nemesis":
        title = f"{summary.get('experiment')} — seed {summary.get('seed')}"
        extra.append(schedule_plot(record.faults, timeline(record.requests),
                                   run_dir / "schedule.png", title).name)
    steps = summary.get("steps") or []
    if steps:
        extra.append(scaling_plot([s for s in steps if s["kind"] != "open-loop"],
                                  run_dir / "scaling.png").name)
        sweep = [s for s in steps if s["kind"] == "open-loop"]
        if sweep:
            bound = float(summary.get("p95_bound_ms") or 400)
            extra.append(open_loop_plot(sweep, bound, run_dir / "open-loop.png").name)
    return write_report(run_dir, summary, requests=record.requests, samples=record.samples,
                        faults=record.faults, traces_dir=record.traces_dir, extra_plots=extra)


def run_and_report(name: Any, **options: Any) -> RunResult:
    """`run_experiment(name, **options)`, then its report written into the run folder."""
    result = run_experiment(name, **options)
    write_run_report(result)
    return result
