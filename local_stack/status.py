"""`breakwater status`: each process's liveness, readiness, CPU quota and use, its proxy's
faults, and the gateway's view of every replica (breaker state) from `/gateway/upstreams`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from local_stack import cgroups
from local_stack.stack import Supervisor
from local_stack.state import Instance, StackState, replica_number


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
    breaker: str = ""
    cpu: cgroups.CpuStats | None = None


@dataclass
class StackStatus:
    """The whole stack as `status` sees it."""

    state: StackState
    instances: list[InstanceStatus]
    upstreams: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        """Every process alive and ready."""
        return all(i.alive and i.health == "ready" for i in self.instances)


def stack_status(supervisor: Supervisor, timeout: float = 1.5) -> StackStatus | None:
    """The status of the stack in the supervisor's var folder (None when none is recorded)."""
    state = supervisor.state()
    if state is None:
        return None
    backend = cgroups.backend_for(state.cgroups.get("kind", "none"),
                                  state.cgroups.get("roots", []))
    instances = sorted(state.instances.values(), key=display_order)
    with ThreadPoolExecutor(max_workers=8) as pool:
        alive = list(pool.map(supervisor.owned, instances))
        health = list(pool.map(lambda i, a: _health(i, a, timeout), instances, alive))
        upstreams_future = pool.submit(_get_json, f"{state.gateway_url}/gateway/upstreams",
                                       timeout)
        proxies_future = pool.submit(_get_json, f"{state.toxiproxy_url}/proxies", timeout)
    upstreams, proxies = upstreams_future.result(), proxies_future.result()
    breakers = _breakers(state, upstreams)
    rows = []
    for instance, is_alive, ready in zip(instances, alive, health, strict=True):
        row = InstanceStatus(instance.name, instance.service, instance.pid, instance.port,
                             is_alive, ready, proxy=instance.proxy.listen if instance.proxy else "",
                             breaker=breakers.get(instance.name, ""))
        if proxies and instance.proxy:
            row.faults = _faults(proxies.get(instance.proxy.name))
        if instance.cgroup:
            row.cpu = backend.stats(instance.cgroup)
        rows.append(row)
    return StackStatus(state, rows, upstreams)


ORDER = ("toxiproxy", "gateway", "console", "auth", "product", "cart", "order")


def display_order(instance: Instance) -> tuple[int, int]:
    """Infrastructure first, then services in a fixed order, replicas by number."""
    rank = ORDER.index(instance.service) if instance.service in ORDER else len(ORDER)
    return rank, replica_number(instance.name)


def _health(instance: Instance, alive: bool, timeout: float) -> str:
    if not alive:
        return "down"
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


def _breakers(state: StackState, upstreams: dict[str, Any] | None) -> dict[str, str]:
    """Instance name -> the gateway's breaker state for it (matched by proxy URL)."""
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
                state_text = str(entry.get("breaker", ""))
                if entry.get("ejected_for"):
                    state_text += f", ejected {entry['ejected_for']}s"
                found[name] = state_text
    return found


def _faults(proxy: dict[str, Any] | None) -> list[str]:
    if proxy is None:
        return ["proxy missing"]
    faults = [] if proxy.get("enabled", True) else ["disabled"]
    faults += [f"{t.get('type')}/{t.get('stream')}" for t in proxy.get("toxics", [])]
    return faults
