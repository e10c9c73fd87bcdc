"""Judging a run against its steady-state hypothesis.

Each clause gives a `Verdict`: PASS, FAIL, or INCONCLUSIVE (too few requests in the window to
say: a p99 of three requests proves nothing). The hypothesis holds only when every clause
passes. Every verdict keeps the measured value, the threshold and the numbers behind them.

Latency against the baseline: the limit is `max_vs_baseline x baseline`, but never below
`baseline + slack_ms` (default 5 ms), because at a few milliseconds scheduling noise on a
shared 2-core machine is larger than any 25%; the summary shows both numbers.

A percentile is judged only where the sample supports it: p99 needs 100 requests in the
window (and in the baseline), p95 needs 20, p90 10. A smaller group is judged at the highest
percentile it does support, down to the median, and the detail says so: the "p99" of 25
requests is their maximum, one scheduling hiccup, not a tail.

A median of fewer than ten requests (a login or two a second) is also held against the
steady state's own spread: it fails only when it is above the limit and above the baseline's
p90 too. Five CPU-bound logins on a shared host can all land in the slow mode of a spread
the steady state already had; a median above the baseline's p90 means at least three of five
requests slower than nine in ten steady-state ones, which chance alone gives less than 1 % of
the time (binomial), while a real slowdown (requests queued behind a hung dependency) is far
above both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.experiments.measurements import (
    Request,
    breaker_series,
    first_time,
    percentile,
    reset_timeout,
    select,
    window_stats,
)
from chaos.experiments.model import Check, Experiment, baseline_windows

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


@dataclass
class Verdict:
    """The outcome of one clause."""

    name: str
    check: str
    status: str
    measured: Any
    threshold: Any
    detail: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunData:
    """What a run measured: requests, named windows, probe samples, fault times, audit."""

    requests: Sequence[Request]
    windows: dict[str, tuple[float, float]]
    samples: Sequence[dict[str, Any]] = ()
    faults: Sequence[dict[str, Any]] = ()  # {"target", "kind", "start", "end"} (seconds)
    audit: dict[str, Any] = field(default_factory=dict)


def hypothesis_holds(verdicts: Sequence[Verdict]) -> bool:
    """True when every clause passed."""
    return bool(verdicts) and all(v.passed for v in verdicts)


def evaluate(experiment: Experiment, data: RunData) -> list[Verdict]:
    """A verdict per hypothesis clause."""
    return [judge(check, data) for check in experiment.hypothesis]


def judge(check: Check, data: RunData) -> Verdict:
    """The verdict of one clause."""
    handler = {
        "error_rate": _error_rate, "latency": _latency, "throughput": _throughput,
        "breaker_opens_within": _breaker_opens, "breaker_closes_within": _breaker_closes,
        "audit": _audit,
    }[check.check]
    return handler(check, data)


def _window(check: Check, data: RunData, key: str = "window") -> tuple[float, float]:
    start, end = data.windows[check.params[key]]
    opened_for = check.params.get("after_breaker_open")
    if opened_for and key == "window":
        fault = _fault(data, opened_for)
        series = breaker_series(data.samples, opened_for)
        opened = first_time(series, "open", fault["start"] if fault else start)
        # Never opened: judge the whole window, so unprotected calls are measured as they are.
        start = max(start, opened) if opened is not None else start
    return start, end


def _fault(data: RunData, target: str | None) -> dict[str, Any] | None:
    for fault in data.faults:
        if target is None or fault["target"] == target:
            return fault
    return data.faults[0] if data.faults and target is None else None


def _stats(check: Check, data: RunData, key: str = "window") -> dict[str, Any]:
    start, end = _window(check, data, key)
    stats = window_stats(select(data.requests, check.params["groups"], start, end),
                         max(end - start, 1e-9))
    stats["window"] = [round(start, 3), round(end, 3)]
    return stats


def _per_group(check: Check, data: RunData, key: str = "window") -> dict[str, dict[str, Any]]:
    start, end = _window(check, data, key)
    result = {}
    for group in check.params["groups"]:
        stats = window_stats(select(data.requests, [group], start, end), max(end - start, 1e-9))
        stats["window"] = [round(start, 3), round(end, 3)]
        result[group] = stats
    return result


def _error_rate(check: Check, data: RunData) -> Verdict:
    stats = _stats(check, data)
    limit = float(check.params["max"])
    if stats["requests"] == 0:
        return Verdict(check.name, check.check, INCONCLUSIVE, None, limit,
                       "no requests in the window", stats)
    status = PASS if stats["error_rate"] <= limit else FAIL
    return Verdict(check.name, check.check, status, round(stats["error_rate"], 4), limit,
                   f"{stats['failures']} of {stats['requests']} failed", stats)


SUPPORTED_PERCENTILES = (99.0, 95.0, 90.0, 50.0)
SMALL_SAMPLE_PERCENTILE = 50.0


def supported_percentile(q: float, samples: int) -> float:
    """The highest percentile up to `q` that `samples` values can tell from their maximum."""
    for candidate in SUPPORTED_PERCENTILES:
        if candidate <= q and samples * (100 - candidate) / 100 >= 1:
            return candidate
    return 50.0


def _latency(check: Check, data: RunData) -> Verdict:
    q = float(str(check.params.get("percentile", "p99")).lstrip("p"))
    minimum = int(check.params.get("min_samples", 5))
    groups = _per_group(check, data)
    baselines = [data.windows[name] for name in baseline_windows(check.params)]
    worst: dict[str, Any] = {"status": PASS, "measured": None, "threshold": None, "detail": ""}
    numbers: dict[str, Any] = {}
    for group, stats in groups.items():
        values = [r.ms for r in select(data.requests, [group], *stats["window"])]
        baseline_values: list[float] | None = None
        if "max_vs_baseline" in check.params:
            baseline_values = [r.ms for start, end in baselines
                               for r in select(data.requests, [group], start, end)]
        judged = supported_percentile(q, min(len(values), len(baseline_values)
                                             if baseline_values is not None else len(values)))
        measured = percentile(values, judged)
        limit = check.params.get("max_ms")
        entry: dict[str, Any] = {"requests": len(values), "percentile": f"p{judged:g}",
                                 "measured_ms": measured}
        if baseline_values is not None:
            base = percentile(baseline_values, judged)
            entry["baseline_ms"] = base
            entry["baseline_requests"] = len(baseline_values)
            if base is None:
                entry["status"] = INCONCLUSIVE
                numbers[group] = entry
                continue
            relative = max(float(check.params["max_vs_baseline"]) * base,
                           base + float(check.params.get("slack_ms", 5.0)))
            if judged == SMALL_SAMPLE_PERCENTILE < q:
                # Too few requests for any tail: their median is judged, and fails only above
                # the steady state's own p90 too (see the module's docstring).
                spread = percentile(baseline_values, 90.0)
                entry["baseline_p90_ms"] = spread
                relative = max(relative, spread or relative)
            limit = relative if limit is None else min(float(limit), relative)
        entry["limit_ms"] = limit
        if len(values) < minimum:
            entry["status"] = INCONCLUSIVE
        else:
            entry["status"] = PASS if measured <= limit else FAIL
        numbers[group] = entry
    statuses = [entry["status"] for entry in numbers.values()]
    status = FAIL if FAIL in statuses else INCONCLUSIVE if INCONCLUSIVE in statuses else PASS
    failing = [g for g, e in numbers.items() if e["status"] != PASS]
    shown = failing[0] if failing else max(numbers, key=lambda g: (numbers[g].get("measured_ms")
                                                                    or 0), default=None)
    if shown is not None:
        worst = numbers[shown]
        detail = "; ".join(
            f"{g}: {e['percentile']} {_ms(e.get('measured_ms'))} (limit {_ms(e.get('limit_ms'))}, "
            f"n={e['requests']}{', base ' + _ms(e['baseline_ms']) if 'baseline_ms' in e else ''}"
            f"{', steady-state p90 ' + _ms(e['baseline_p90_ms']) if 'baseline_p90_ms' in e else ''}"
            f"{'' if e['percentile'] == f'p{q:g}' else f', too few for a p{q:g}'})"
            for g, e in numbers.items())
        return Verdict(check.name, check.check, status, worst.get("measured_ms"),
                       worst.get("limit_ms"), detail, numbers)
    return Verdict(check.name, check.check, INCONCLUSIVE, None, None, "no groups", numbers)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _throughput(check: Check, data: RunData) -> Verdict:
    stats = _stats(check, data)
    limit = check.params.get("min_rps")
    if "min_vs_baseline" in check.params:
        spans = [data.windows[name] for name in baseline_windows(check.params)]
        base = window_stats([r for start, end in spans
                             for r in select(data.requests, check.params["groups"], start, end)],
                            sum(end - start for start, end in spans))["ok_rps"]
        stats["baseline_ok_rps"] = base
        relative = float(check.params["min_vs_baseline"]) * base
        limit = relative if limit is None else max(float(limit), relative)
    status = PASS if stats["ok_rps"] >= float(limit) else FAIL
    return Verdict(check.name, check.check, status, round(stats["ok_rps"], 2), round(limit, 2),
                   f"{stats['ok_rps']:.1f} successful req/s (limit >= {limit:.1f})", stats)


def _breaker_opens(check: Check, data: RunData) -> Verdict:
    upstream = check.params["upstream"]
    fault = _fault(data, check.params.get("fault", upstream))
    limit = float(check.params["seconds"])
    if fault is None:
        return Verdict(check.name, check.check, INCONCLUSIVE, None, limit, "no fault recorded")
    series = breaker_series(data.samples, upstream)
    opened = first_time(series, "open", fault["start"])
    numbers = {"fault_start": fault["start"], "opened_at": opened, "samples": len(series)}
    if opened is None or (fault.get("end") is not None and opened > fault["end"] + limit):
        return Verdict(check.name, check.check, FAIL, None, limit,
                       f"the {upstream} breaker never opened during the fault", numbers)
    took = opened - fault["start"]
    return Verdict(check.name, check.check, PASS if took <= limit else FAIL, round(took, 3),
                   limit, f"opened {took:.2f} s after the fault began", numbers)


def _breaker_closes(check: Check, data: RunData) -> Verdict:
    upstream = check.params["upstream"]
    fault = _fault(data, check.params.get("fault", upstream))
    limit = float(check.params["seconds"])
    if check.params.get("plus_reset_timeout", False):
        limit += reset_timeout(data.samples, upstream)
    if fault is None or fault.get("end") is None:
        return Verdict(check.name, check.check, INCONCLUSIVE, None, limit, "the fault never ended")
    series = breaker_series(data.samples, upstream)
    was_open = first_time(series, "open", fault["start"]) is not None
    closed = first_time(series, "closed", fault["end"])
    numbers = {"fault_end": fault["end"], "closed_at": closed, "opened": was_open}
    if not was_open:
        return Verdict(check.name, check.check, FAIL, None, limit,
                       f"the {upstream} breaker never opened, so it protected nothing", numbers)
    if closed is None:
        return Verdict(check.name, check.check, FAIL, None, limit,
                       "the breaker had not closed by the end of the run", numbers)
    took = closed - fault["end"]
    return Verdict(check.name, check.check, PASS if took <= limit else FAIL, round(took, 3),
                   round(limit, 3), f"closed {took:.2f} s after recovery", numbers)


def _audit(check: Check, data: RunData) -> Verdict:
    key = check.params["key"]
    if key not in data.audit:
        return Verdict(check.name, check.check, INCONCLUSIVE, None, None,
                       f"the audit did not measure {key}")
    value = data.audit[key]
    if "equals_key" in check.params:
        expected = data.audit.get(check.params["equals_key"])
        return Verdict(check.name, check.check, PASS if value == expected else FAIL, value,
                       expected, f"{key}={value}, {check.params['equals_key']}={expected}")
    if "equals" in check.params:
        return Verdict(check.name, check.check, PASS if value == check.params["equals"] else FAIL,
                       value, check.params["equals"], f"{key}={value}")
    if "max" in check.params:
        return Verdict(check.name, check.check, PASS if value <= check.params["max"] else FAIL,
                       value, check.params["max"], f"{key}={value} (max {check.params['max']})")
    if "min" in check.params:
        return Verdict(check.name, check.check, PASS if value >= check.params["min"] else FAIL,
                       value, check.params["min"], f"{key}={value} (min {check.params['min']})")
    return Verdict(check.name, check.check, INCONCLUSIVE, value, None, "no bound given")
