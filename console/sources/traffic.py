"""Traffic per route group from the gateway's `/metrics`: rate, errors, latency percentiles.

The text is parsed with prometheus_client's own parser. Rates and percentiles are what
Prometheus's `rate()` and `histogram_quantile()` would give over the same span: the difference
between this scrape and one about `window` seconds older, a counter that went down counting as
restarted from zero.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "breakwater_gateway_requests"
LATENCY = "breakwater_gateway_request_seconds"
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


@dataclass
class Scrape:
    """One reading of the gateway's counters, summed per route group."""

    at: float
    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    # group -> upper bound (le) -> cumulative count
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)


def parse_scrape(text: str, at: float) -> Scrape:
    """The request counts (all, and answered 5xx) and latency buckets of every route group."""
    scrape = Scrape(at)
    for family in text_string_to_metric_families(text):
        if family.name == REQUESTS:
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue  # `_created` timestamps
                group = sample.labels.get("group", "")
                scrape.requests[group] = scrape.requests.get(group, 0.0) + sample.value
                if str(sample.labels.get("status", "")).startswith("5"):
                    scrape.errors[group] = scrape.errors.get(group, 0.0) + sample.value
        elif family.name == LATENCY:
            for sample in family.samples:
                if not sample.name.endswith("_bucket"):
                    continue
                group = sample.labels.get("group", "")
                bound = float(sample.labels["le"])
                counts = scrape.buckets.setdefault(group, {})
                counts[bound] = counts.get(bound, 0.0) + sample.value
    return scrape


def increase(new: float, old: float | None) -> float:
    """How much a counter grew; a counter lower than before restarted from zero."""
    if old is None or new < old:
        return new
    return new - old


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus's `histogram_quantile`: the `q` quantile of cumulative (le, count) pairs,
    interpolated linearly inside its bucket; None without observations."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower  # the highest finite bound, as Prometheus answers
            inside = count - below
            share = (rank - below) / inside if inside > 0 else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def group_figures(new: Scrape, old: Scrape) -> dict[str, dict[str, Any]]:
    """Per group between two scrapes: requests/s, 5xx/s, the error share and percentiles (ms)."""
    elapsed = new.at - old.at
    figures: dict[str, dict[str, Any]] = {}
    if elapsed <= 0:
        return figures
    for group in sorted(set(new.requests) | set(new.buckets)):
        done = increase(new.requests.get(group, 0.0), old.requests.get(group))
        failed = increase(new.errors.get(group, 0.0), old.errors.get(group))
        old_buckets = old.buckets.get(group, {})
        window = [(le, increase(count, old_buckets.get(le)))
                  for le, count in new.buckets.get(group, {}).items()]
        row: dict[str, Any] = {
            "rate": round(done / elapsed, 3),
            "errors": round(failed / elapsed, 3),
            "error_ratio": round(failed / done, 4) if done else 0.0,
        }
        for name, q in QUANTILES.items():
            value = histogram_quantile(q, window)
            row[name] = None if value is None else round(value * 1000, 2)
        figures[group] = row
    return figures


class TrafficSeries:
    """Successive scrapes turned into points for live charts, `window` seconds smoothed."""

    def __init__(self, window: float = 5.0, keep: int = 600) -> None:
        self.window = window
        self._scrapes: deque[Scrape] = deque()
        self.points: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, scrape: Scrape) -> dict[str, Any] | None:
        """Take one scrape; the new point (None for the first scrape after a pause)."""
        if self._scrapes and scrape.at - self._scrapes[-1].at > 3 * self.window:
            self._scrapes.clear()  # nobody watched for a while: no rate across the gap
        self._scrapes.append(scrape)
        while len(self._scrapes) > 2 and scrape.at - self._scrapes[1].at >= self.window:
            self._scrapes.popleft()
        if len(self._scrapes) < 2:
            return None
        point = {"t": round(scrape.at, 3), "groups": group_figures(scrape, self._scrapes[0])}
        with self._lock:
            self.points.append(point)
        return point

    def history(self) -> list[dict[str, Any]]:
        """Every point kept, oldest first (safe to call from any thread)."""
        with self._lock:
            return list(self.points)
