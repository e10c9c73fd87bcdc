"""Crashes on purpose: SIGKILL a gunicorn worker (its master forks another) or a whole
instance (master and workers; the keeper restarts it), as a machine or an OOM killer would.

    kill_worker(var, "order")       # the pids killed
    kill_instance(var, "product-1") # the pid killed

Instances are named as in the state file (`order`, `product-2`); a service name (`product`)
picks its first replica unless `rng` chooses among them.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from pathlib import Path

from local_stack.processes import is_running, signal_group, workers_of
from local_stack.state import Instance, load_state


class CrashError(LookupError):
    """Nothing to kill under that name, or it is not running; the message says what is."""


def instance_of(var: Path, name: str, rng: random.Random | None = None) -> Instance:
    """The running instance called `name`, or one replica of the service `name`."""
    state = load_state(var)
    if state is None:
        raise CrashError(f"no stack is recorded in {var}: `breakwater up` first")
    if name in state.instances:
        return state.instances[name]
    replicas = state.of_service(name)
    if not replicas:
        raise CrashError(f"no instance or service {name!r}; instances: "
                         f"{', '.join(sorted(state.instances))}")
    return rng.choice(replicas) if rng is not None else replicas[0]


def kill_worker(var: Path, name: str, rng: random.Random | None = None) -> list[int]:
    """SIGKILL the worker processes of instance `name` (not its master); the pids killed."""
    instance = instance_of(var, name, rng)
    workers = workers_of(instance.pid)
    if not workers:
        raise CrashError(f"{instance.name} (pid {instance.pid}) has no worker running")
    for pid in workers:
        _kill(pid)
    return workers


def kill_instance(var: Path, name: str, rng: random.Random | None = None) -> int:
    """SIGKILL the whole instance `name` (its gunicorn master and workers at once, as a
    container's processes all go); the pid of its master."""
    instance = instance_of(var, name, rng)
    if not is_running(instance.pid):
        raise CrashError(f"{instance.name} (pid {instance.pid}) is not running")
    signal_group(instance.pid, signal.SIGKILL)
    return instance.pid


def _kill(pid: int) -> None:
    # Ended on its own meanwhile: the same outcome.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
