"""The supervisor end to end: real processes on free loopback ports, all cleaned up."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local_stack import (
    StackOptions,
    StackRunning,
    StartupError,
    Supervisor,
    load_state,
    stack_status,
)
from local_stack.cgroups import detect_backend
from local_stack.ports import is_listening
from local_stack.processes import group_alive, is_running
from local_stack.seed import seed
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def processes_of(var: Path) -> list[int]:
    """Running processes whose environment names this var folder (anything `up` started)."""
    needle = f"BREAKWATER_VAR_DIR={var}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0") \
                        and is_running(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def quick_options(**kwargs: object) -> StackOptions:
    """Free ports, a small product quota when cgroups work, and a deadline that fits a test."""
    options = StackOptions(port_base=0, profile=None, cpus={"product": 0.5}, ready_timeout=45)
    for key, value in kwargs.items():
        setattr(options, key, value)
    return options


class RecordingSupervisor(Supervisor):
    """Remembers the cgroup folders of the stack, to check they are gone after a failure."""

    cgroup_dirs: list[str] = []

    def setup_cgroups(self, state, options):  # type: ignore[no-untyped-def]
        backend = super().setup_cgroups(state, options)
        self.cgroup_dirs = list(state.cgroups.get("dirs", []))
        return backend


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[RecordingSupervisor]:
    """A supervisor on its own var folder; whatever it leaves running is stopped."""
    supervisor = RecordingSupervisor(tmp_path / "var", stop_timeout=5)
    yield supervisor
    if load_state(supervisor.var) is not None:
        supervisor.down()


def product_urls_known_to_gateway(gateway: str) -> list[str]:
    body = requests.get(f"{gateway}/gateway/upstreams", timeout=2).json()
    return [i["url"] for i in body["upstreams"]["product"]["instances"]]


def test_up_status_scale_down(supervisor: Supervisor) -> None:
    state = supervisor.up(quick_options())
    gateway, admin = state.gateway_url, state.gateway_admin_url
    assert requests.get(f"{gateway}/api/v1/products", timeout=5).status_code == 200
    # The operational views are on the admin port only.
    assert requests.get(f"{gateway}/gateway/upstreams", timeout=5).status_code == 404
    assert requests.get(f"{admin}/metrics", timeout=5).status_code == 200
    assert set(state.instances) == {"toxiproxy", "auth", "product-1", "cart", "order", "gateway",
                                    "console"}
    assert state.console_url == state.instances["console"].url
    assert requests.get(f"{state.console_url}/readyz", timeout=5).status_code == 200
    proxies = requests.get(f"{state.toxiproxy_url}/proxies", timeout=2).json()
    assert set(proxies) == {"auth", "product-1", "cart", "order"}
    cart = state.instances["cart"]
    assert proxies["cart"]["upstream"] == f"127.0.0.1:{cart.port}"
    registry = json.loads(Path(state.registry_file).read_text())
    assert registry["services"]["cart"][0]["url"] == cart.proxy.url

    first = seed(gateway, supervisor.var, products=5, flash_sale_stock=7, users=2)
    again = seed(gateway, supervisor.var, products=5, flash_sale_stock=7, users=2)
    assert first.created == {"products": 6, "users": 2}
    assert again.created == {"products": 0, "users": 0} and again.existing["users"] == 2
    saved = json.loads((supervisor.var / "seed.json").read_text())
    assert saved["users"] == ["user1@breakwater.test", "user2@breakwater.test"]
    assert saved["flash_sale"]["slug"] == "flash-sale" and saved["flash_sale"]["stock"] == 7

    status = stack_status(supervisor)
    assert status is not None and status.healthy
    breakers = {i.name: i.breaker for i in status.instances if i.breaker is not None}
    assert breakers["product-1"].state == "closed" and breakers["product-1"].failure_rate == 0.0
    if detect_backend().available:
        product = next(i for i in status.instances if i.name == "product-1")
        assert product.cpu is not None and product.cpu.cpus == 0.5 and product.cpu.usage_s > 0
    with pytest.raises(StackRunning, match="breakwater down"):
        supervisor.up(quick_options())

    state = supervisor.scale("product", 3)
    replicas = state.of_service("product")
    proxy_urls = [i.proxy.url for i in replicas]
    assert [i.name for i in replicas] == ["product-1", "product-2", "product-3"]
    registry = json.loads(Path(state.registry_file).read_text())
    assert [e["url"] for e in registry["services"]["product"]] == proxy_urls
    wait_until(lambda: product_urls_known_to_gateway(admin) == proxy_urls, timeout=10,
               message="gateway sees three product replicas")

    def every_replica_served() -> bool:
        for _ in range(6):
            requests.get(f"{gateway}/api/v1/products?page=1", timeout=5)
        body = requests.get(f"{admin}/gateway/upstreams", timeout=2).json()
        return all(i["served"] > 0 for i in body["upstreams"]["product"]["instances"])

    wait_until(every_replica_served, timeout=20, message="requests reach the new replicas")

    removed = replicas[1:]
    state = supervisor.scale("product", 1)
    assert [i.name for i in state.of_service("product")] == ["product-1"]
    assert not any(group_alive(i.pid) for i in removed)
    assert set(requests.get(f"{state.toxiproxy_url}/proxies", timeout=2).json()) == {
        "auth", "product-1", "cart", "order"}
    wait_until(lambda: product_urls_known_to_gateway(admin) == proxy_urls[:1], timeout=10,
               message="gateway drops the removed replicas")

    # Cart scales too (the scaling experiment's counter-case), its second instance numbered.
    state = supervisor.scale("cart", 2)
    assert [i.name for i in state.of_service("cart")] == ["cart", "cart-2"]
    assert set(requests.get(f"{state.toxiproxy_url}/proxies", timeout=2).json()) == {
        "auth", "product-1", "cart", "cart-2", "order"}
    wait_until(lambda: len(requests.get(f"{admin}/gateway/upstreams", timeout=2).json()
                           ["upstreams"]["cart"]["instances"]) == 2, timeout=10,
               message="gateway sees two cart instances")
    state = supervisor.scale("cart", 1)
    assert [i.name for i in state.of_service("cart")] == ["cart"]

    pids = [i.pid for i in state.instances.values()]
    ports = [i.port for i in state.instances.values()] + [
        int(i.proxy.listen.rpartition(":")[2]) for i in state.instances.values() if i.proxy]
    cgroup_dirs = state.cgroups.get("dirs", [])
    report = supervisor.down()
    assert sorted(report.stopped) == sorted([*state.instances, "keeper"])
    assert report.still_listening == [] and report.cgroup_failures == []
    assert not any(is_running(pid) or group_alive(pid) for pid in pids)
    assert not any(is_listening(port) for port in ports)
    assert not any(os.path.exists(d) for d in cgroup_dirs)
    assert processes_of(supervisor.var) == []
    assert load_state(supervisor.var) is None
    assert not Path(state.registry_file).exists()


def test_a_service_that_fails_to_start_is_reported_and_nothing_is_left(
    supervisor: RecordingSupervisor,
) -> None:
    # Migrations (service-wide) pass; the first product replica's own setting is invalid.
    options = quick_options(env={"product-1": {"PRODUCT_DEFAULT_STOCK": "-1"}})
    with pytest.raises(StartupError) as failure:
        supervisor.up(options)
    assert failure.value.instance == "product-1"
    assert "exited during start-up" in str(failure.value)
    assert "PRODUCT_DEFAULT_STOCK" in failure.value.tail
    assert load_state(supervisor.var) is None
    wait_until(lambda: processes_of(supervisor.var) == [], timeout=5,
               message="every started process is gone")
    assert not any(os.path.exists(d) for d in supervisor.cgroup_dirs)
