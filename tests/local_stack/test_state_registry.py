"""The state file and the registry file: formats, atomic writes, stale stacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.discovery import parse_registry
from local_stack import StackRunning, Supervisor
from local_stack.cgroups import CpuGroup
from local_stack.processes import start_ticks
from local_stack.registry import caller_urls, registry_document, write_registry
from local_stack.state import (
    Instance,
    Proxy,
    StackState,
    StateError,
    load_state,
    stack_lock,
    write_json_atomic,
)


def make_state(var: Path, products: int = 2) -> StackState:
    state = StackState(stack_id="abc123", var_dir=str(var),
                       registry_file=str(var / "registry.json"),
                       gateway_url="http://127.0.0.1:8080", toxiproxy_url="http://127.0.0.1:8474")
    ports = {"auth": 5000, "cart": 5003, "order": 5004}
    ports.update({f"product-{n}": 5002 + 10 * (n - 1) for n in range(1, products + 1)})
    for name, port in ports.items():
        service = name.partition("-")[0]
        proxy = Proxy(name, f"127.0.0.1:{port + 20000}", f"127.0.0.1:{port}")
        state.instances[name] = Instance(
            name, service, port, proxy=proxy,
            cgroup=CpuGroup(name, 0.25, [f"/cg/cpu/bw/{name}"], "v1"),
        )
    return state


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    state.capacity_bounded = True
    state.save()
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert loaded.to_json() == state.to_json()
    assert loaded.instances["product-2"].proxy.url == "http://127.0.0.1:25012"
    assert loaded.instances["product-2"].cgroup.procs_files == ["/cg/cpu/bw/product-2/cgroup.procs"]
    assert json.loads((tmp_path / "stack.json").read_text())["version"] == 1


def test_missing_and_broken_state_files(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    (tmp_path / "stack.json").write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        load_state(tmp_path)
    (tmp_path / "stack.json").write_text('{"version": 99}')
    with pytest.raises(StateError, match="version"):
        load_state(tmp_path)


def test_of_service_orders_replicas_by_number(tmp_path: Path) -> None:
    state = make_state(tmp_path, products=11)
    names = [i.name for i in state.of_service("product")]
    assert names[:3] == ["product-1", "product-2", "product-3"] and names[-1] == "product-11"


def test_registry_lists_proxy_urls_the_gateway_understands(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    document = registry_document(state)
    assert document["services"]["product"][1] == {
        "url": "http://127.0.0.1:25012", "id": "product-2", "direct": "http://127.0.0.1:5012"}
    path = write_registry(state)
    parsed = parse_registry(json.loads(path.read_text()))
    assert parsed["product"] == ("http://127.0.0.1:25002", "http://127.0.0.1:25012")
    assert parsed["cart"] == ("http://127.0.0.1:25003",)
    assert caller_urls(state, "product") == "http://127.0.0.1:25002,http://127.0.0.1:25012"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "registry.json"
    write_json_atomic(target, {"services": {}})
    write_json_atomic(target, {"services": {"product": []}})
    assert json.loads(target.read_text()) == {"services": {"product": []}}
    assert [p.name for p in target.parent.iterdir()] == ["registry.json"]


def test_the_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    with stack_lock(tmp_path), pytest.raises(StateError, match="another breakwater command"), \
            stack_lock(tmp_path):
        pass
    with stack_lock(tmp_path):
        pass


def test_a_stale_state_is_cleaned_and_a_live_one_refused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    stale = make_state(var, products=1)
    for instance in stale.instances.values():
        instance.pid, instance.cgroup = int(finished.stdout), None
    stale.save()
    write_registry(stale)
    supervisor = Supervisor(var)
    assert supervisor.clear_stale() is True
    assert load_state(var) is None and not (var / "registry.json").exists()

    live = make_state(var, products=1)


    live.instances["auth"].pid, live.instances["auth"].ticks = os.getpid(), start_ticks(os.getpid())
    live.save()
    with pytest.raises(StackRunning, match="breakwater down"):
        supervisor.clear_stale()
    assert load_state(var) is not None


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:


    me = Instance("auth", "auth", 5000, pid=os.getpid(), ticks=(start_ticks(os.getpid()) or 0) + 1)
    assert not Supervisor(tmp_path).owned(me)
