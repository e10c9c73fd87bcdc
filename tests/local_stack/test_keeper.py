"""The keeper restarts an instance that dies, with backoff; `status` counts the restarts and
`down` stops the restarted processes. Real processes throughout."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from breakwater.cli import main
from local_stack import StackOptions, Supervisor, load_state, stack_status
from local_stack.crash import CrashError, kill_instance, kill_worker
from local_stack.keeper import Backoff, Keeper, launch_file, save_launch
from local_stack.processes import (
    group_alive,
    is_running,
    launch,
    signal_group,
    start_ticks,
    stop_groups,
)
from local_stack.state import Instance, StackState
from tests.local_stack.test_stack_e2e import processes_of
from tests.support.processes import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.5, factor=2, cap=3)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3, 3]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeper_stack(tmp_path: Path) -> Iterator[tuple[StackState, list[int]]]:
    """A recorded stack of one real process (`worker`), and every pid it ever had, stopped
    afterwards."""
    var = tmp_path / "var"
    log = var / "logs" / "worker.log"
    instance = Instance("worker", "worker", 0, log=str(log))
    instance.pid = launch(SLEEPER, {"PATH": "/usr/bin:/bin"}, log, tmp_path)
    instance.ticks = start_ticks(instance.pid)
    save_launch(var, "worker", SLEEPER, {"PATH": "/usr/bin:/bin"}, tmp_path)
    state = StackState("abc123", str(var), status="running", instances={"worker": instance})
    state.save()
    pids = [instance.pid]
    yield state, pids
    stop_groups(pids, timeout=2)


def test_a_dead_instance_is_restarted_after_a_growing_delay(
        sleeper_stack: tuple[StackState, list[int]]) -> None:
    state, pids = sleeper_stack
    var = Path(state.var_dir)
    clock, lines = FakeClock(), []
    keeper = Keeper(var, "abc123", Backoff(initial=0.5, factor=2, cap=30, reset_after=10),
                    clock=clock, log=lines.append)
    assert keeper.tick() and lines == []  # alive: nothing to do

    signal_group(pids[0], 9)
    wait_until(lambda: not is_running(pids[0]), timeout=5, message="the process is dead")
    assert keeper.tick()
    assert "worker" in lines[-1] and "restarting in 0.5 s" in lines[-1]
    clock.now += 0.4
    keeper.tick()
    assert load_state(var).instances["worker"].pid == pids[0], "restarted before its delay"
    clock.now += 0.2
    keeper.tick()
    first = load_state(var).instances["worker"]
    pids.append(first.pid)
    assert first.pid != pids[0] and is_running(first.pid)
    assert first.restarts == 1 and first.last_exit == "killed by SIGKILL"
    assert "restarted worker" in lines[-1]
    assert "breakwater keeper: worker" in Path(first.log).read_text()

    # Dying again within `reset_after` of the restart: the delay doubles.
    clock.now += 2
    signal_group(first.pid, 9)
    wait_until(lambda: not is_running(first.pid), timeout=5, message="the restart is dead")
    keeper.tick()
    assert "restarting in 1 s" in lines[-1] and "2 in a row" in lines[-1]
    clock.now += 1.01
    keeper.tick()
    second = load_state(var).instances["worker"]
    pids.append(second.pid)
    assert second.restarts == 2 and is_running(second.pid)

    # Up long enough, the next death starts the count over.
    clock.now += 11
    signal_group(second.pid, 9)
    wait_until(lambda: not is_running(second.pid), timeout=5, message="dead again")
    keeper.tick()
    assert "restarting in 0.5 s" in lines[-1]


def test_the_keeper_ends_with_its_stack_and_skips_what_it_cannot_restart(
        sleeper_stack: tuple[StackState, list[int]]) -> None:
    state, pids = sleeper_stack
    var = Path(state.var_dir)
    launch_file(var, "worker").unlink()  # like the fault proxy: no launch recorded
    signal_group(pids[0], 9)
    wait_until(lambda: not is_running(pids[0]), timeout=5, message="dead")
    clock = FakeClock()
    keeper = Keeper(var, "abc123", clock=clock, log=lambda _: None)
    assert keeper.tick()
    clock.now += 60
    assert keeper.tick() and load_state(var).instances["worker"].pid == pids[0]
    assert Keeper(var, "another-stack", log=lambda _: None).tick() is False
    (var / "stack.json").unlink()
    assert keeper.tick() is False


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(tmp_path / "var", stop_timeout=5)
    yield supervisor
    if load_state(supervisor.var) is not None:
        supervisor.down()


@pytest.mark.integration
def test_the_stack_restarts_a_killed_instance_and_down_stops_the_new_one(
        supervisor: Supervisor, capsys: pytest.CaptureFixture[str]) -> None:
    state = supervisor.up(StackOptions(port_base=0, profile=None, ready_timeout=45,
                                       console=False))
    assert state.keeper is not None and is_running(state.keeper.pid)
    order = state.instances["order"]

    # A worker killed: gunicorn's master forks another; the instance itself lives on.
    killed = kill_worker(supervisor.var, "product")
    wait_until(lambda: not any(is_running(p) for p in killed), timeout=5,
               message="the worker is gone")
    wait_until(lambda: requests.get(f"{state.gateway_url}/api/v1/products",
                                    timeout=5).status_code == 200,
               timeout=20, message="product answers again with a new worker")
    assert load_state(supervisor.var).instances["product-1"].restarts == 0

    # The whole instance killed: the keeper starts it again, on the same port.
    assert kill_instance(supervisor.var, "order") == order.pid
    wait_until(lambda: load_state(supervisor.var).instances["order"].restarts == 1,
               timeout=15, message="the keeper restarted order")
    restarted = load_state(supervisor.var).instances["order"]
    assert restarted.pid != order.pid and not group_alive(order.pid)
    wait_until(lambda: requests.get(f"{restarted.url}/readyz", timeout=2).status_code == 200,
               timeout=30, message="the restarted order is ready")
    status = stack_status(supervisor)
    assert status.restarts == {"order": 1}
    row = next(i for i in status.instances if i.name == "order")
    assert row.alive and row.pid == restarted.pid
    # `up` (this test) is its parent, not the keeper: how it ended is not the keeper's to know.
    assert row.last_exit == "exited"
    keeper_row = next(i for i in status.instances if i.name == "keeper")
    assert keeper_row.alive and keeper_row.health == "watching"
    assert main(["status", "--var-dir", str(supervisor.var), "--json"]) in (0, 1)
    printed = json.loads(capsys.readouterr().out)
    assert printed["restarts"] == {"order": 1}
    assert printed["state"]["instances"]["order"]["restarts"] == 1
    assert printed["state"]["keeper"]["pid"] == state.keeper.pid
    main(["status", "--var-dir", str(supervisor.var)])
    table = capsys.readouterr().out
    assert "RESTARTS" in table and "1 (exited)" in table and "watching" in table
    keeper_log = (supervisor.logs_dir / "keeper.log").read_text()
    assert "order" in keeper_log and "restarted order" in keeper_log

    with pytest.raises(CrashError, match="no instance or service"):
        kill_instance(supervisor.var, "warehouse")

    report = supervisor.down()
    assert "keeper" in report.stopped and "order" in report.stopped
    assert not is_running(restarted.pid) and not is_running(state.keeper.pid)
    wait_until(lambda: processes_of(supervisor.var) == [], timeout=5,
               message="nothing the stack or its keeper started is left")
    assert not (supervisor.var / "launch").exists()


def test_an_instance_that_cannot_be_started_is_tried_again_later(
        sleeper_stack: tuple[StackState, list[int]], tmp_path: Path) -> None:
    state, pids = sleeper_stack
    var = Path(state.var_dir)
    save_launch(var, "worker", [str(tmp_path / "no-such-program")], {}, tmp_path)
    clock, lines = FakeClock(), []
    keeper = Keeper(var, "abc123", Backoff(initial=0.5, factor=2, cap=30), clock=clock,
                    log=lines.append)
    signal_group(pids[0], 9)
    wait_until(lambda: not is_running(pids[0]), timeout=5, message="dead")
    keeper.tick()
    clock.now += 0.6
    assert keeper.tick()
    assert "cannot start worker" in lines[-1] and "retrying in 1 s" in lines[-1]
    assert load_state(var).instances["worker"].restarts == 0
