"""The keeper: restarts an instance of the stack that dies, as compose's `restart:` policy
and Kubernetes' kubelet do.

`up` starts one keeper per stack (`python -m local_stack keeper`), recorded in the state file
as `keeper`, stopped first by `down`. Every `interval` it reads var/stack.json; an instance
whose leader (the gunicorn master, the gateway, the console) is gone is restarted from the
command and environment `up` launched it with (var/launch/<instance>.json), after the rest of
its process group (orphaned workers still holding the port) is killed, as a container's
processes all go when its first process exits. Restarts back off exponentially (0.5 s, 1 s,
2 s … 30 s), and the count starts over once an instance has stayed up for 10 s, like
Docker's restart delay. Each death and restart is a line in logs/keeper.log and in the
instance's own log; the state file follows the new pid and counts the restarts, so
`breakwater status` shows them and `down` stops the new process. The keeper changes the state
only while holding the stack lock, so it never races `down` or `scale`.

The fault proxy is not restarted: its proxies and toxics live in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.processes import (
    exit_status,
    group_alive,
    is_running,
    launch,
    signal_group,
    start_ticks,
)
from local_stack.state import (
    Instance,
    StackState,
    StateError,
    load_state,
    stack_lock,
    utc_now,
    write_json_atomic,
)

LAUNCH_DIR = "launch"
KEEPER_LOG = "keeper.log"


@dataclass(frozen=True)
class Backoff:
    """Delay before restart n (1, 2, …) of an instance that keeps dying."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    # Up this long, an instance's next death counts as the first again.
    reset_after: float = 10.0

    def delay(self, consecutive: int) -> float:
        """Seconds to wait before the `consecutive`-th restart in a row."""
        return min(self.cap, self.initial * self.factor ** max(0, consecutive - 1))


# -- launch specs: how `up` started each instance -----------------------------------------------
def launch_file(var: Path, name: str) -> Path:
    """Where the command and environment of instance `name` are kept."""
    return Path(var) / LAUNCH_DIR / f"{name}.json"


def save_launch(var: Path, name: str, command: list[str], env: Mapping[str, str],
                cwd: Path) -> None:
    """Record how instance `name` was started (owner-readable only: it holds the environment)."""
    path = launch_file(var, name)
    write_json_atomic(path, {"command": list(command), "env": dict(env), "cwd": str(cwd)})
    os.chmod(path, 0o600)


def load_launch(var: Path, name: str) -> dict[str, object] | None:
    """The recorded launch of `name`, or None (not restartable: the fault proxy)."""
    try:
        return json.loads(launch_file(var, name).read_text())
    except (OSError, ValueError):
        return None


def keeper_command(var: Path, stack_id: str) -> list[str]:
    """How `up` starts the keeper of stack `stack_id`."""
    return [sys.executable, "-m", "local_stack", "keeper", "--var", str(var),
            "--stack-id", stack_id]


def start_keeper(state: StackState, env: Mapping[str, str], logs_dir: Path,
                 cwd: Path) -> Instance:
    """Launch the keeper of `state` in its own process group; its record."""
    keeper = Instance("keeper", "keeper", 0, log=str(logs_dir / KEEPER_LOG))
    keeper.pid = launch(keeper_command(Path(state.var_dir), state.stack_id), env,
                        Path(keeper.log), cwd)
    keeper.ticks, keeper.started_at = start_ticks(keeper.pid), utc_now()
    return keeper


def leader_dead(instance: Instance) -> bool:
    """Whether the instance's first process (its pid) has exited or the pid was reused."""
    if instance.pid <= 0:
        return False
    if not is_running(instance.pid):
        return True
    ticks = start_ticks(instance.pid)
    return instance.ticks is not None and ticks is not None and ticks != instance.ticks


@dataclass
class _Crash:
    consecutive: int
    due: float
    exit: str


@dataclass
class Keeper:
    """Watches the stack in `var` (id `stack_id`) and restarts what dies; `tick()` is one pass."""

    var: Path
    stack_id: str
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = print
    up_since: dict[str, float] = field(default_factory=dict)
    crashes: dict[str, _Crash] = field(default_factory=dict)

    def tick(self) -> bool:
        """One look at the stack; False when the stack is gone (the keeper should end)."""
        try:
            state = load_state(self.var)
        except StateError:
            return True  # half-written by hand? look again next time
        if state is None or state.stack_id != self.stack_id:
            return False
        if state.status != "running":
            return True
        now = self.clock()
        for instance in state.instances.values():
            if load_launch(self.var, instance.name) is None:
                continue
            self.up_since.setdefault(instance.name, now)
            if not leader_dead(instance):
                continue
            crash = self.crashes.get(instance.name)
            if crash is None or crash.due == float("inf"):
                self._note_death(instance, now, crash)
            elif now >= crash.due:
                self._restart(instance.name)
        return True

    def _note_death(self, instance: Instance, now: float, previous: _Crash | None) -> None:
        up_for = now - self.up_since.get(instance.name, now)
        stable = up_for >= self.backoff.reset_after
        consecutive = 1 if previous is None or stable else previous.consecutive + 1
        delay = self.backoff.delay(consecutive)
        code = exit_status(instance.pid)
        exit_text = ("exited" if code is None else
                     f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}")
        self.crashes[instance.name] = _Crash(consecutive, now + delay, exit_text)
        self.log(f"{utc_now()} keeper: {instance.name} (pid {instance.pid}) {exit_text} after "
                 f"{up_for:.1f} s up; restarting in {delay:g} s "
                 f"({'backoff, ' if consecutive > 1 else ''}{consecutive} in a row)")

    def _restart(self, name: str) -> None:
        try:
            with stack_lock(self.var):
                state = load_state(self.var)
                if state is None or state.stack_id != self.stack_id:
                    return
                instance = state.instances.get(name)
                spec = load_launch(self.var, name)
                if instance is None or spec is None or not leader_dead(instance):
                    self.crashes.pop(name, None)  # removed by scale, or already back
                    return
                self._clear_group(instance.pid)
                crash = self.crashes[name]
                log = Path(instance.log)
                with contextlib.suppress(OSError), open(log, "a") as handle:
                    handle.write(f"--- {utc_now()} breakwater keeper: {name} (pid {instance.pid}) "
                                 f"{crash.exit}; restarting it (restart {instance.restarts + 1})\n")
                old = instance.pid
                try:
                    instance.pid = launch(list(spec["command"]), dict(spec["env"]), log,
                                          Path(str(spec["cwd"])))
                except OSError as exc:
                    # Not startable now (a file gone, no memory): try again after a longer wait.
                    consecutive = crash.consecutive + 1
                    self.crashes[name] = _Crash(consecutive,
                                                self.clock() + self.backoff.delay(consecutive),
                                                crash.exit)
                    self.log(f"{utc_now()} keeper: cannot start {name}: {exc}; retrying in "
                             f"{self.backoff.delay(consecutive):g} s")
                    return
                instance.ticks, instance.started_at = start_ticks(instance.pid), utc_now()
                instance.restarts += 1
                instance.restarted_at, instance.last_exit = instance.started_at, crash.exit
                state.save()
        except StateError:
            return  # a command holds the lock (down, scale): try again on the next tick
        now = self.clock()
        self.up_since[name] = now
        # Remember the run of deaths until it has stayed up for `reset_after`.
        self.crashes[name] = _Crash(crash.consecutive, float("inf"), crash.exit)
        self.log(f"{utc_now()} keeper: restarted {name} as pid {instance.pid} (was {old}; "
                 f"restart {instance.restarts})")

    @staticmethod
    def _clear_group(pgid: int, timeout: float = 5.0) -> None:
        """Kill what is left of the dead instance's group (workers holding its port)."""
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def run(self, interval: float = 0.2) -> None:
        """Tick every `interval` seconds until the stack is gone; an unexpected error is
        logged and the watch goes on (a keeper that dies keeps nothing)."""
        while True:
            try:
                if not self.tick():
                    return
            except Exception:  # noqa: BLE001 - logged with its traceback, then the next look
                self.log(f"{utc_now()} keeper: error while watching:\n{traceback.format_exc()}")
            time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    """`python -m local_stack keeper --var DIR --stack-id ID`."""
    parser = argparse.ArgumentParser(prog="python -m local_stack keeper",
                                     description="Restart the instances of a local stack that die.")
    parser.add_argument("--var", required=True, help="the stack's var folder")
    parser.add_argument("--stack-id", required=True, help="the stack to keep (ends when it goes)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between looks")
    args = parser.parse_args(argv)
    keeper = Keeper(Path(args.var).resolve(), args.stack_id,
                    log=lambda line: print(line, flush=True))
    keeper.log(f"{utc_now()} keeper: watching stack {args.stack_id} in {keeper.var}")
    keeper.run(args.interval)
    keeper.log(f"{utc_now()} keeper: stack {args.stack_id} is gone; ending")
    return 0

