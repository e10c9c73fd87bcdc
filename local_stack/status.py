"""`breakwater status`: each process's liveness, readiness, CPU quota and use, its proxy's
faults, and the gateway's view of every replica from `/gateway/upstreams` on its admin port
(`gateway_admin_url`): breaker state,
failure rate, slow-call rate over the breaker's window, and time to the next trial."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from local_stack import cgroups
from local_stack.stack import Supervisor
from local_stack.state import Instance, StackState, replica_number


@dataclass
class BreakerFigures:
    """The gateway's breaker on one replica, as `/gateway/upstreams` reports it."""

    state: str
    failure_rate: float = 0.0
    slow_call_rate: float = 0.0
    calls_in_window: int = 0
    next_trial_in: float | None = None
    ejected_for: float = 0.0

    @classmethod
    def from_view(cls, entry: dict[str, Any]) -> BreakerFigures:
        """From one instance entry of `/gateway/upstreams` (missing figures read as none)."""
        wait = entry.get("next_trial_in")
        return cls(state=str(entry.get("breaker", "")),
                   failure_rate=float(entry.get("failure_rate") or 0.0),
                   slow_call_rate=float(entry.get("slow_call_rate") or 0.0),
                   calls_in_window=int(entry.get("calls_in_window") or 0),
                   next_trial_in=None if wait is None else float(wait),
                   ejected_for=float(entry.get("ejected_for") or 0.0))

    def describe(self) -> str:
        """One cell: "open, trial in 3.2s, 60% failed, 0% slow of 10"."""
        parts = [self.state]
        if self.state == "open" and self.next_trial_in is not None:
            parts.append(f"trial in {self.next_trial_in:.1f}s")
        elif self.state == "half-open":
            parts.append("trial due")
        parts.append(f"{self.failure_rate:.0%} failed, {self.slow_call_rate:.0%} slow of "
                     f"{self.calls_in_window}")
        if self.ejected_for:
            parts.append(f"ejected {self.ejected_for:g}s")
        return ", ".join(parts)


@dataclass
class InstanceStatus:
    """One process as `status` sees it."""

    name: str
    service: str
    pid: int
    port: int
    alive: bool
    health: str
    proxy: str = ""
    faults: list[str] = field(default_factory=list)
    breaker: BreakerFigures | None = None
    cpu: cgroups.CpuStats | None = None
    # Times the keeper restarted it after it died, and how the last one ended.
    restarts: int = 0
    last_exit: str = ""


@dataclass
class StackStatus:
    """The whole stack as `status` sees it."""

    state: StackState
    instances: list[InstanceStatus]
    upstreams: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        """Every process alive and ready (the keeper: watching)."""
        return all(i.alive and i.health in ("ready", KEEPING) for i in self.instances)

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts per instance (those restarted at least once)."""
        return {i.name: i.restarts for i in self.instances if i.restarts}


def stack_status(supervisor: Supervisor, timeout: float = 1.5) -> StackStatus | None:
    """The status of the stack in the supervisor's var folder (None when none is recorded)."""
    state = supervisor.state()
    if state is None:
        return None
    backend = cgroups.backend_for(state.cgroups.get("kind", "none"),
                                  state.cgroups.get("roots", []))
    instances = sorted(state.processes(), key=display_order)
    with ThreadPoolExecutor(max_workers=8) as pool:
        alive = list(pool.map(supervisor.owned, instances))
        health = list(pool.map(lambda i, a: _health(i, a, timeout), instances, alive))
        admin = state.gateway_admin_url or state.gateway_url
        upstreams_future = pool.submit(_get_json, f"{admin}/gateway/upstreams", timeout)
        proxies_future = pool.submit(_get_json, f"{state.toxiproxy_url}/proxies", timeout)
    upstreams, proxies = upstreams_future.result(), proxies_future.result()
    breakers = _breakers(state, upstreams)
    rows = []
    for instance, is_alive, ready in zip(instances, alive, health, strict=True):
        row = InstanceStatus(instance.name, instance.service, instance.pid, instance.port,
                             is_alive, ready, proxy=instance.proxy.listen if instance.proxy else "",
                             breaker=breakers.get(instance.name),
                             restarts=instance.restarts, last_exit=instance.last_exit)
        if proxies and instance.proxy:
            row.faults = _faults(proxies.get(instance.proxy.name))
        if instance.cgroup:
            row.cpu = backend.stats(instance.cgroup)
        rows.append(row)
    return StackStatus(state, rows, upstreams)


ORDER = ("toxiproxy", "keeper", "gateway", "console", "auth", "product", "cart", "order")
KEEPING = "watching"


def display_order(instance: Instance) -> tuple[int, int]:
    """Infrastructure first, then services in a fixed order, replicas by number."""
    rank = ORDER.index(instance.service) if instance.service in ORDER else len(ORDER)
    return rank, replica_number(instance.name)


def _health(instance: Instance, alive: bool, timeout: float) -> str:
    if not alive:
        return "down"
    if instance.service == "keeper":
        return KEEPING
    path = "/version" if instance.service == "toxiproxy" else "/readyz"
    try:
        response = requests.get(f"{instance.url}{path}", timeout=timeout)
    except requests.RequestException as exc:
        return f"no answer ({type(exc).__name__})"
    return "ready" if response.status_code == 200 else f"not ready ({response.status_code})"


def _get_json(url: str, timeout: float) -> dict[str, Any] | None:
    try:
        response = requests.get(url, timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def _breakers(state: StackState, upstreams: dict[str, Any] | None) -> dict[str, BreakerFigures]:
    """Instance name -> the gateway's breaker figures for it (matched by proxy URL)."""
    if not upstreams:
        return {}
    by_url = {}
    for instance in state.instances.values():
        if instance.proxy:
            by_url[instance.proxy.url] = instance.name
        by_url[instance.url] = instance.name
    found = {}
    for upstream in (upstreams.get("upstreams") or {}).values():
        for entry in upstream.get("instances", []):
            name = by_url.get(str(entry.get("url", "")).rstrip("/"))
            if name:
                found[name] = BreakerFigures.from_view(entry)
    return found


def _faults(proxy: dict[str, Any] | None) -> list[str]:
    if proxy is None:
        return ["proxy missing"]
    faults = [] if proxy.get("enabled", True) else ["disabled"]
    faults += [f"{t.get('type')}/{t.get('stream')}" for t in proxy.get("toxics", [])]
    return faults
