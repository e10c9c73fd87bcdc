"""Everything the page shows, read from the sources in one round.

Each source is read on its own thread with a short timeout, so one that hangs (a fault on the
gateway's admin port, a Jaeger that is away) never holds the others up; what failed is said
in the update's `sources` instead of being left blank silently.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import requests

from chaos.client import ToxiproxyClient
from console.controls import FaultControls
from console.settings import ConsoleSettings
from console.sources.experiment import ExperimentWatch
from console.sources.faults import FaultWatch
from console.sources.traces import TraceWatch
from console.sources.traffic import TrafficSeries, parse_scrape
from console.sources.upstreams import breaker_view, rejections

TIMEOUT = 2.0


class Watch:
    """Reads every source of one console; `read()` is one update for the pages."""

    def __init__(self, settings: ConsoleSettings, controls: FaultControls,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.admin = settings.gateway_admin_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "breakwater-console"
        self.toxiproxy = ToxiproxyClient(settings.toxiproxy_url or None, timeout=TIMEOUT)
        self.faults = FaultWatch(self.toxiproxy, clock=clock, own_deadlines=controls.deadlines)
        self.traffic = TrafficSeries()
        self.experiment = ExperimentWatch(settings.resolved_progress_file(), clock=clock)
        self.traces = TraceWatch(settings.resolved_traces_dir(), settings.jaeger_url, clock=clock)
        self.pool = ThreadPoolExecutor(max_workers=5, thread_name_prefix="console-source")
        self._names: dict[str, str] = {}
        self._rejected: tuple[float, dict[str, float]] | None = None
        self._traces: dict[str, Any] | None = None
        self._traces_at = 0.0
        self._pending: dict[str, Future[Any]] = {}

    def read(self) -> dict[str, Any]:
        """One update: breakers, traffic, faults, experiment, traces and how each source is."""
        now = self.clock()
        jobs: dict[str, Callable[[], Any]] = {
            "faults": self.faults.poll, "gateway": self._upstreams, "metrics": self._metrics,
            "experiment": self.experiment.poll,
        }
        if self._traces is None or now - self._traces_at >= self.settings.traces_seconds:
            jobs["traces"] = self.traces.poll
        sources: dict[str, dict[str, Any]] = {}
        for name in [n for n in jobs if n in self._pending and not self._pending[n].done()]:
            del jobs[name]  # the last round's read still hangs: never two at once
            sources[name] = {"ok": False, "error": "no answer in time"}
        futures = {name: self.pool.submit(job) for name, job in jobs.items()}
        self._pending.update(futures)
        results: dict[str, Any] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=TIMEOUT + 1.0)
                sources[name] = {"ok": True}
            except FutureTimeout:
                sources[name] = {"ok": False, "error": "no answer in time"}
            except Exception as exc:  # noqa: BLE001 - any source may fail; the page says how
                sources[name] = {"ok": False, "error": _why(exc)}
        faults = results.get("faults")
        if faults is not None:
            # Instances are named after their listeners in the upstream view.
            self._names = {p["listen"]: p["name"] for p in faults["proxies"]}
        if "traces" in results:
            self._traces, self._traces_at = results["traces"], now
        elif "traces" in sources:
            self._traces_at = now  # retry at the next traces interval, not every second
        sources.setdefault("traces", {"ok": self._traces is not None})
        return {
            "t": now,
            "breakers": self._breakers(results.get("gateway"), now),
            "traffic": results.get("metrics"),
            "faults": faults,
            "experiment": results.get("experiment"),
            "traces": self._traces,
            "locust_url": self.locust_url(),
            "sources": sources,
        }

    def _upstreams(self) -> dict[str, Any]:
        response = self.http.get(f"{self.admin}/gateway/upstreams", timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()

    def _metrics(self) -> dict[str, Any] | None:
        response = self.http.get(f"{self.admin}/metrics", timeout=TIMEOUT)
        response.raise_for_status()
        return self.traffic.add(parse_scrape(response.text, self.clock()))

    def _breakers(self, view: dict[str, Any] | None, now: float) -> list[dict[str, Any]] | None:
        if view is None:
            return None
        previous, elapsed = None, None
        if self._rejected is not None:
            elapsed, previous = now - self._rejected[0], self._rejected[1]
        self._rejected = (now, rejections(view))
        return breaker_view(view, self._names, now, previous, elapsed)

    def locust_url(self) -> str:
        """Locust's web UI: the one `breakwater load --web` announced, else the setting."""
        path = self.settings.resolved_load_web_file()
        try:
            announced = json.loads(Path(path).read_text())
            if isinstance(announced, dict) and isinstance(announced.get("url"), str):
                return announced["url"]
        except (OSError, ValueError):
            pass
        return self.settings.locust_url

    def describe(self) -> dict[str, str]:
        """Where each source is read from, for the page's header."""
        return {"gateway": self.admin, "fault proxy": self.toxiproxy.url,
                "traces": self.traces.source,
                "experiment": str(self.settings.resolved_progress_file())}

    def close(self) -> None:
        """Stop the source threads."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def _why(error: Exception) -> str:
    if isinstance(error, requests.ConnectionError):
        return "not answering (connection refused or reset)"
    if isinstance(error, requests.Timeout):
        return "no answer in time"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"answered {error.response.status_code}"
    text = str(error).strip() or type(error).__name__
    return text[:300]
