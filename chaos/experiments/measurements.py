"""Numbers from a run's request log: per route group, per time window, per second.

Every figure a verdict uses comes from here, so it can be recomputed from requests.csv.
Percentiles are nearest-rank over every answer in the window (failures included: a slow
failure is slow). Times are seconds from the start of the load.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    """One row of requests.csv, with `t` relative to the load's start."""

    t: float
    method: str
    name: str
    group: str
    status: int
    ms: float
    outcome: str
    code: str = ""
    trace_id: str = ""


def read_requests(path: Path, started: float) -> list[Request]:
    """requests.csv (and any per-worker parts next to it) as Requests, oldest first."""
    rows: list[Request] = []
    paths = [path, *sorted(path.parent.glob(path.name + ".*"))]
    for part in paths:
        if not part.exists():
            continue
        with open(part, newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append(Request(float(row["t"]) - started, row["method"], row["name"],
                                    row["group"], int(row["status"]), float(row["ms"]),
                                    row["outcome"], row.get("code", ""), row.get("trace_id", "")))
    rows.sort(key=lambda r: r.t)
    return rows


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0-100) of `values` (sorted or not); None when empty."""
    if not values:
        return None
    ordered = sorted(values)  # Timsort: linear on an already sorted list
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def select(requests: Iterable[Request], groups: Iterable[str] | None = None,
           start: float = float("-inf"), end: float = float("inf")) -> list[Request]:
    """Requests of `groups` (all when None) started in [start, end)."""
    wanted = set(groups) if groups else None
    return [r for r in requests if (wanted is None or r.group in wanted) and start <= r.t < end]


def window_stats(requests: Sequence[Request], seconds: float) -> dict[str, Any]:
    """Counts, error rate, percentiles and throughput of `requests` over `seconds`."""
    latencies = [r.ms for r in requests]
    failures = sum(r.outcome == "failure" for r in requests)
    expected = sum(r.outcome == "expected" for r in requests)
    count = len(requests)
    return {
        "requests": count, "failures": failures, "expected": expected,
        "ok": count - failures - expected,
        "error_rate": failures / count if count else 0.0,
        "rps": count / seconds if seconds > 0 else 0.0,
        "ok_rps": (count - failures) / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99), "max_ms": max(latencies) if latencies else None,
        "seconds": seconds,
    }


def group_table(requests: Sequence[Request], windows: dict[str, tuple[float, float]]
                ) -> dict[str, dict[str, dict[str, Any]]]:
    """window → group → stats, for every group seen (and `all`)."""
    groups = sorted({r.group for r in requests})
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for window, (start, end) in windows.items():
        inside = select(requests, None, start, end)
        table[window] = {"all": window_stats(inside, end - start)}
        for group in groups:
            table[window][group] = window_stats([r for r in inside if r.group == group],
                                                end - start)
    return table


def timeline(requests: Sequence[Request], bucket: float = 1.0) -> dict[str, list[dict[str, Any]]]:
    """group → per-bucket stats (t, requests, failures, expected, rps, p50/p95/p99)."""
    if not requests:
        return {}
    last = max(r.t for r in requests)
    buckets = int(last // bucket) + 1
    by_group: dict[str, list[list[Request]]] = {}
    for r in requests:
        if r.t < 0:
            continue
        series = by_group.setdefault(r.group, [[] for _ in range(buckets)])
        series[int(r.t // bucket)].append(r)
    result = {}
    for group, series in sorted(by_group.items()):
        result[group] = [
            {"t": index * bucket, "requests": len(items),
             "failures": sum(r.outcome == "failure" for r in items),
             "expected": sum(r.outcome == "expected" for r in items),
             "rps": len(items) / bucket,
             "p50_ms": percentile([r.ms for r in items], 50),
             "p95_ms": percentile([r.ms for r in items], 95),
             "p99_ms": percentile([r.ms for r in items], 99)}
            for index, items in enumerate(series)]
    return result


# -- breaker states from probe samples --------------------------------------------------------

def breaker_state(sample: dict[str, Any], upstream: str) -> str | None:
    """`open`, `half-open` or `closed` for `upstream` in a /gateway/upstreams sample."""
    body = sample.get("body") or {}
    instances = (body.get("upstreams", {}).get(upstream) or {}).get("instances") or []
    states = {str(i.get("breaker", "")).lower().replace("_", "-") for i in instances}
    if not states:
        return None
    if "open" in states:
        return "open"
    if "half-open" in states:
        return "half-open"
    return "closed"


def breaker_series(samples: Iterable[dict[str, Any]], upstream: str) -> list[tuple[float, str]]:
    """(t, state) of `upstream` for each probe sample that had one."""
    series = []
    for sample in samples:
        state = breaker_state(sample, upstream)
        if state is not None:
            series.append((float(sample["t"]), state))
    return series


def first_time(series: Iterable[tuple[float, str]], state: str, after: float) -> float | None:
    """The first sample time at or after `after` showing `state`."""
    for t, value in series:
        if t >= after and value == state:
            return t
    return None


def reset_timeout(samples: Iterable[dict[str, Any]], upstream: str, default: float = 5.0) -> float:
    """The breaker reset timeout `upstream`'s policy reports (the default otherwise)."""
    for sample in samples:
        policy = ((sample.get("body") or {}).get("upstreams", {}).get(upstream) or {}).get("policy")
        if policy and "reset_timeout" in policy:
            return float(policy["reset_timeout"])
    return default
