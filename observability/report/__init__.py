"""Run reports: `reports/<time>-<name>/` with summary.json, plots, Locust's files, report.html.

    write_report(run_dir, summary, requests=..., samples=..., faults=...)

`summary` carries every number behind every verdict; this adds the per-second timeline
(timeline.json), the plots and the trace links, then writes summary.json and report.html.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.experiments.measurements import Request, breaker_series, timeline


def write_report(run_dir: Path, summary: dict[str, Any], *, requests: Sequence[Request] = (),
                 samples: Sequence[dict[str, Any]] = (), faults: Sequence[dict[str, Any]] = (),
                 traces_dir: Path | None = None, upstreams: Sequence[str] = ("cart", "product",
                                                                           "order", "auth"),
                 extra_plots: Sequence[str] = ()) -> Path:
    """Write plots, summary.json and report.html into `run_dir`; the report.html path."""
    from observability.report import plots
    from observability.report.html import render
    from observability.report.traces import trace_links

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
    return html
