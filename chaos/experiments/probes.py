"""Probes: things sampled in the background while the load runs.

- `gateway_upstreams`: GET /gateway/upstreams (breaker states, bulkhead use, recent errors);
- `product_stock`: the hot product's available units (GET /api/v1/products/<slug>);
- `orders`: the probe account's order count (GET /api/v1/orders, with a token).

Each sample is `{"t": seconds from the load's start, "probe": kind, "ok": bool, "body": …}`.
A probe that fails records the failure and keeps sampling: probes observe, never stop a run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from chaos.experiments.model import Probe


class ProbeSampler:
    """Samples a set of probes on background threads until `stop()`."""

    def __init__(self, probes: tuple[Probe, ...] | list[Probe], gateway: str, *,
                 started: float | None = None, token: str | None = None,
                 hot_slug: str = "flash-sale", clock: Callable[[], float] = time.time,
                 admin: str | None = None) -> None:
        self.probes = list(probes)
        self.gateway = gateway.rstrip("/")
        self.admin = (admin or gateway).rstrip("/")  # the gateway's admin port
        self.started = started or clock()
        self.token = token
        self.hot_slug = hot_slug
        self.clock = clock
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> ProbeSampler:
        for probe in self.probes:
            thread = threading.Thread(target=self._loop, args=(probe,), daemon=True,
                                      name=f"probe-{probe.kind}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[dict[str, Any]]:
        """Stop sampling; every sample, oldest first."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            return sorted(self.samples, key=lambda s: s["t"])

    def by_kind(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.samples if s["probe"] == kind]

    def _loop(self, probe: Probe) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            began = time.monotonic()
            self.sample_once(probe, session)
            self._stop.wait(max(0.0, probe.every - (time.monotonic() - began)))

    def sample_once(self, probe: Probe, session: requests.Session | None = None) -> dict[str, Any]:
        """Take one sample of `probe` and keep it."""
        session = session or requests.Session()
        at = self.clock()
        sample: dict[str, Any] = {"t": at - self.started, "probe": probe.kind, "ok": False}
        try:
            url, headers = self._target(probe)
            response = session.get(url, headers=headers, timeout=probe.params.get("timeout", 2.0))
            sample["status"] = response.status_code
            sample["ok"] = response.status_code == 200
            body = response.json()
            sample["body"] = self._reduce(probe, body)
        except (requests.RequestException, ValueError) as exc:
            sample["error"] = f"{type(exc).__name__}: {exc}"[:200]
        with self._lock:
            self.samples.append(sample)
        return sample

    def _target(self, probe: Probe) -> tuple[str, dict[str, str]]:
        if probe.kind == "gateway_upstreams":
            return f"{self.admin}/gateway/upstreams", {}
        if probe.kind == "product_stock":
            slug = probe.params.get("slug", self.hot_slug)
            return f"{self.gateway}/api/v1/products/{slug}", {}
        if probe.kind == "orders":
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            return f"{self.gateway}/api/v1/orders?page=1&per_page=1", headers
        raise ValueError(f"unknown probe {probe.kind}")

    @staticmethod
    def _reduce(probe: Probe, body: Any) -> Any:
        """Keep what the report needs (the upstream snapshot can be large)."""
        if probe.kind == "gateway_upstreams" and isinstance(body, dict):
            upstreams = {}
            for name, upstream in (body.get("upstreams") or {}).items():
                upstreams[name] = {
                    "policy": {k: (upstream.get("policy") or {}).get(k)
                               for k in ("reset_timeout", "failure_threshold", "read_timeout")},
                    "bulkhead": upstream.get("bulkhead"),
                    "instances": [{"url": i.get("url"), "breaker": i.get("breaker"),
                                   "outstanding": i.get("outstanding"),
                                   "ejected_for": i.get("ejected_for")}
                                  for i in upstream.get("instances") or []],
                }
            return {"resilience": body.get("resilience"), "upstreams": upstreams}
        if probe.kind == "product_stock" and isinstance(body, dict):
            return {"stock": body.get("stock"), "id": body.get("id")}
        if probe.kind == "orders" and isinstance(body, dict):
            return {"total": body.get("total")}
        return body
