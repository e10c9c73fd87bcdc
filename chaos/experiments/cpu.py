"""CPU used and CPU-quota throttling of every stack instance, sampled while a run goes on.

`CpuSampler(stack).start()` (or `with CpuSampler(stack) as sampler:`) reads the stack's cgroup counters (`LocalStack.cpu_stats()`)
every `every` seconds on a daemon thread (bounded in count); `stop()` returns the samples;
`per_window(samples, started, windows)` turns them into CPU share and throttled
milliseconds per second of each instance in each window. A service whose cgroup quota
throttles it stalls for the rest of the 100 ms CFS period: that shows as ~100 ms outliers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

MAX_SAMPLES = 4000


class CpuSampler:
    """Samples `stack.cpu_stats()` until stopped (or MAX_SAMPLES)."""

    def __init__(self, stack: Any, every: float = 0.25) -> None:
        self.stack, self.every = stack, every
        self.samples: list[tuple[float, dict[str, dict[str, Any]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> CpuSampler:
        """Begin sampling; returns self."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.samples) < MAX_SAMPLES:
            with contextlib.suppress(Exception):  # a missed sample is no reason to stop
                self.samples.append((time.time(), self.stack.cpu_stats()))
            self._stop.wait(self.every)

    def stop(self) -> list[tuple[float, dict[str, dict[str, Any]]]]:
        """Stop and return the samples (unix time, instance → stats)."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples

    def __enter__(self) -> CpuSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def around(self, start: float, end: float) -> tuple[dict[str, Any], dict[str, Any], float]:
        """The samples nearest to the unix times `start` and `end`, and the seconds between."""
        if not self.samples:
            return {}, {}, max(end - start, 1e-9)
        first = min(self.samples, key=lambda sample: abs(sample[0] - start))
        last = min(self.samples, key=lambda sample: abs(sample[0] - end))
        return first[1], last[1], max(last[0] - first[0], 1e-9)


def per_window(samples: list[tuple[float, dict[str, dict[str, Any]]]], started: float,
               windows: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """window → instance → {cpu_share, throttled_ms_per_s} between the samples closest
    inside the window (times in `windows` are seconds from `started`)."""
    result: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, (start, end) in windows.items():
        inside = [(t, s) for t, s in samples if started + start <= t <= started + end]
        if len(inside) < 2:
            result[name] = {}
            continue
        (t0, first), (t1, last) = inside[0], inside[-1]
        seconds = t1 - t0
        result[name] = {}
        for instance, now in last.items():
            then = first.get(instance) or {}
            if "error" in now or now.get("usage_s") is None or then.get("usage_s") is None:
                continue
            throttled = (now.get("throttled_s") or 0.0) - (then.get("throttled_s") or 0.0)
            result[name][instance] = {
                "cpu_share": round((now["usage_s"] - then["usage_s"]) / seconds, 3),
                "quota": now.get("cpus"),
                "throttled_ms_per_s": round(throttled * 1000 / seconds, 1)}
    return result
