"""PNG plots of a run (matplotlib, Agg backend): latency, throughput, errors, breakers, scaling.

Every time plot shades the fault windows (from the fault proxy's `/events`, else from the
experiment's own record of when it applied and removed each fault).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

BREAKER_LEVEL = {"closed": 0.0, "half-open": 0.5, "open": 1.0}
FAULT_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b")


# Past this many faults (a nemesis schedule), the legend names kinds, not each fault.
MANY_FAULTS = 6
KIND_COLOURS = {"timeout": "#d62728", "reset_peer": "#ff7f0e", "latency": "#9467bd",
                "down": "#8c564b", "kill_worker": "#e377c2", "kill_instance": "#17becf"}


def _shade(axis: Any, faults: Sequence[dict[str, Any]], end: float, *,
           by_kind: bool = False) -> None:
    many = by_kind or len(faults) > MANY_FAULTS
    named: set[str] = set()
    for index, fault in enumerate(faults):
        if fault.get("start") is None:
            continue
        kind = str(fault.get("kind"))
        colour = (KIND_COLOURS.get(kind, FAULT_COLOURS[0]) if many
                  else FAULT_COLOURS[index % len(FAULT_COLOURS)])
        label = f"fault: {kind if many else fault.get('label') or kind}"
        label = label if label not in named else None
        named.add(label or "")
        stop = fault["end"] if fault.get("end") is not None else end
        if stop == fault["start"]:  # an instant (a crash): a line, not a window
            axis.axvline(fault["start"], color=colour, alpha=0.6, linewidth=1, label=label)
        else:
            axis.axvspan(fault["start"], stop, color=colour, alpha=0.12, label=label)


def _end(timeline: dict[str, list[dict[str, Any]]]) -> float:
    return max((series[-1]["t"] + 1 for series in timeline.values() if series), default=1.0)


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def latency_plot(timeline: dict[str, list[dict[str, Any]]], faults: Sequence[dict[str, Any]],
                 path: Path, title: str = "") -> Path:
    """p50/p95/p99 per second, one panel per route group."""
    groups = list(timeline) or ["(no requests)"]
    figure, axes = plt.subplots(len(groups), 1, figsize=(10, 1.9 * len(groups) + 0.8),
                                sharex=True, squeeze=False)
    end = _end(timeline)
    for axis, group in zip(axes[:, 0], groups, strict=True):
        series = timeline.get(group, [])
        t = [p["t"] for p in series]
        for key, style in (("p50_ms", ":"), ("p95_ms", "--"), ("p99_ms", "-")):
            axis.plot(t, [p[key] if p[key] is not None else float("nan") for p in series],
                      style, marker=".", markersize=3, label=key.split("_")[0])
        _shade(axis, faults, end)
        axis.set_ylabel(f"{group}\nms")
        axis.set_yscale("symlog", linthresh=10)
        axis.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[0, 0].set_title(title or "latency per route group")
    axes[-1, 0].set_xlabel("seconds since the load started")
    return _save(figure, path)


def throughput_plot(timeline: dict[str, list[dict[str, Any]]], faults: Sequence[dict[str, Any]],
                    path: Path, offered_rate: float | None = None) -> Path:
    """Requests a second per route group (and the offered rate in open loop)."""
    figure, axis = plt.subplots(figsize=(10, 3.4))
    for group, series in timeline.items():
        axis.plot([p["t"] for p in series], [p["requests"] - p["failures"] for p in series],
                  label=f"{group} (answered)")
    if offered_rate:
        axis.axhline(offered_rate, color="black", linestyle="--", label="offered rate")
    _shade(axis, faults, _end(timeline))
    axis.set_ylabel("req/s")
    axis.set_xlabel("seconds since the load started")
    axis.set_title("throughput (successful or expected answers)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=3, loc="upper right")
    return _save(figure, path)


def errors_plot(timeline: dict[str, list[dict[str, Any]]], faults: Sequence[dict[str, Any]],
                path: Path) -> Path:
    """Failures a second per route group, and expected business answers."""
    figure, axis = plt.subplots(figsize=(10, 3.0))
    for group, series in timeline.items():
        if any(p["failures"] for p in series):
            axis.plot([p["t"] for p in series], [p["failures"] for p in series],
                      label=f"{group} failures")
        if any(p["expected"] for p in series):
            axis.plot([p["t"] for p in series], [p["expected"] for p in series], ":",
                      label=f"{group} expected (409/429)")
    _shade(axis, faults, _end(timeline))
    axis.set_ylabel("per second")
    axis.set_xlabel("seconds since the load started")
    axis.set_title("failures and expected business answers")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7, ncol=3, loc="upper right")
    return _save(figure, path)


def breaker_plot(series: dict[str, list[tuple[float, str]]], faults: Sequence[dict[str, Any]],
                 path: Path, end: float) -> Path:
    """Breaker state per upstream over time (closed 0, half-open 0.5, open 1)."""
    figure, axis = plt.subplots(figsize=(10, 2.6))
    for offset, (upstream, points) in enumerate(sorted(series.items())):
        if not points:
            continue
        axis.step([t for t, _ in points], [BREAKER_LEVEL.get(s, 0) + offset * 0.03
                                           for _, s in points], where="post", label=upstream)
    _shade(axis, faults, end)
    axis.set_yticks([0, 0.5, 1], ["closed", "half-open", "open"])
    axis.set_xlabel("seconds since the load started")
    axis.set_title("gateway circuit breakers")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7, ncol=4, loc="upper right")
    return _save(figure, path)


def schedule_plot(faults: Sequence[dict[str, Any]], timeline: dict[str, list[dict[str, Any]]],
                  path: Path, title: str = "") -> Path:
    """The fault schedule as carried out — one row per service, windows as bars, crashes as
    markers — above the checkout's answers and failures a second."""
    from chaos.experiments.nemesis import LINKS as links

    figure, (gantt, answers) = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True,
                                            gridspec_kw={"height_ratios": [1.2, 1]})
    targets = sorted({str(f["target"]) for f in faults})
    end = max([_end(timeline), *[(f.get("end") or f.get("start") or 0) for f in faults]])
    named: set[str] = set()
    for fault in faults:
        if fault.get("start") is None:
            continue
        row, kind = targets.index(str(fault["target"])), str(fault.get("kind"))
        colour = KIND_COLOURS.get(kind, FAULT_COLOURS[0])
        label = kind if kind not in named else None
        named.add(kind)
        stop = fault["end"] if fault.get("end") is not None else end
        if stop == fault["start"]:
            gantt.plot([fault["start"]], [row], marker="X", markersize=9, linestyle="",
                       color=colour, label=label)
        else:
            gantt.barh(row, stop - fault["start"], left=fault["start"], height=0.5,
                       color=colour, alpha=0.75, label=label)
    gantt.set_yticks(range(len(targets)), [f"{t}\n({links[t]})" if t in links else t
                                           for t in targets])
    gantt.set_ylim(-0.7, max(len(targets), 1) - 0.3)
    gantt.set_title(title or "fault schedule")
    gantt.grid(alpha=0.3, axis="x")
    if gantt.get_legend_handles_labels()[0]:
        gantt.legend(fontsize=7, ncol=6, loc="upper right")
    series = timeline.get("checkout", [])
    t = [p["t"] for p in series]
    answers.plot(t, [p["requests"] - p["failures"] for p in series], label="checkouts answered")
    answers.plot(t, [p["failures"] for p in series], color="#d62728", label="checkout failures")
    _shade(answers, faults, end, by_kind=True)
    answers.set_ylabel("per second")
    answers.set_xlabel("seconds since the sale started")
    answers.grid(alpha=0.3)
    handles, labels = answers.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True)
            if not lab.startswith("fault")]
    if keep:
        answers.legend(*zip(*keep, strict=True), fontsize=7, loc="upper right")
    return _save(figure, path)


def scaling_plot(steps: Sequence[dict[str, Any]], path: Path) -> Path:
    """Throughput and p95 per replica count, with the ideal linear line."""
    figure, left = plt.subplots(figsize=(7, 3.6))
    labels = [str(s["label"]) for s in steps]
    throughput = [s.get("ok_rps") or 0 for s in steps]
    left.bar(labels, throughput, color="#1f77b4", alpha=0.8, label="successful req/s")
    base = next((s.get("ok_rps") for s in steps if s.get("replicas") == 1
                 and s.get("kind") == "product"), None)
    if base:
        left.plot(labels, [base * s.get("replicas", 1) if s.get("kind") == "product" else base
                           for s in steps], "k--", label="linear")
    left.set_ylabel("req/s")
    right = left.twinx()
    right.plot(labels, [s.get("p95_ms") or 0 for s in steps], "o-", color="#d62728", label="p95")
    right.set_ylabel("p95 ms")
    left.set_title("throughput and p95 per replica count")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    names = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, names, fontsize=7, loc="upper left")
    return _save(figure, path)


def open_loop_plot(steps: Sequence[dict[str, Any]], bound_ms: float, path: Path) -> Path:
    """p95 and achieved rate against the offered rate, one line per replica count."""
    figure, (latency, achieved) = plt.subplots(1, 2, figsize=(10, 3.8))
    top = 0.0
    for replicas in sorted({s["replicas"] for s in steps}):
        mine = sorted((s for s in steps if s["replicas"] == replicas),
                      key=lambda s: s.get("offered_rate") or 0)
        offered = [s.get("offered_rate") or 0 for s in mine]
        top = max([top, *offered])
        label = f"{replicas} replica{'s' if replicas > 1 else ''}"
        latency.plot(offered, [s.get("p95_ms") or 0 for s in mine], "o-", label=label)
        achieved.plot(offered, [s.get("ok_rps") or 0 for s in mine], "o-", label=label)
    latency.axhline(bound_ms, color="black", linestyle=":", label=f"p95 bound {bound_ms:g} ms")
    latency.set_yscale("log")
    latency.set_xlabel("offered req/s (open loop)")
    latency.set_ylabel("p95 ms")
    latency.set_title("p95 against offered load")
    achieved.plot([0, top], [0, top], "k--", label="achieved = offered")
    achieved.set_xlabel("offered req/s (open loop)")
    achieved.set_ylabel("achieved req/s")
    achieved.set_title("achieved against offered rate")
    for axis in (latency, achieved):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    return _save(figure, path)
