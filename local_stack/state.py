"""The stack's state file, `var/stack.json`: what `up` started, so `down` stops exactly that.

It records every process (pid = process group id, port, log, proxy listener, CPU group), the
options the stack was started with, where its parts are reachable, the cgroup hierarchy used,
and `capacity_bounded` (whether every instance runs under a CPU quota), which experiments
copy into their results.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_stack.cgroups import CpuGroup

STATE_FILE = "stack.json"
REGISTRY_FILE = "registry.json"
LOCK_FILE = "stack.lock"
STATE_VERSION = 1


class StateError(RuntimeError):
    """The state file is missing, unreadable or describes another stack than expected."""


def utc_now() -> str:
    """Now as an ISO-8601 UTC timestamp with a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Proxy:
    """A fault-proxy listener in front of one instance."""

    name: str
    listen: str
    upstream: str

    @property
    def url(self) -> str:
        """The base URL callers use."""
        return f"http://{self.listen}"


@dataclass
class Instance:
    """One process of the stack."""

    name: str
    service: str
    port: int
    pid: int = 0
    log: str = ""
    proxy: Proxy | None = None
    cgroup: CpuGroup | None = None
    started_at: str = ""
    # The leader's start time (clock ticks since boot): a reused pid is never mistaken for it.
    ticks: int | None = None
    # Times the keeper started it again after it died, when, and how the last one ended.
    restarts: int = 0
    restarted_at: str = ""
    last_exit: str = ""

    @property
    def url(self) -> str:
        """The process's own base URL (callers use the proxy's)."""
        return f"http://127.0.0.1:{self.port}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cgroup"] = self.cgroup.to_json() if self.cgroup else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Instance:
        proxy = Proxy(**data["proxy"]) if data.get("proxy") else None
        group = CpuGroup.from_json(data["cgroup"]) if data.get("cgroup") else None
        return cls(data["name"], data["service"], int(data["port"]), int(data.get("pid") or 0),
                   data.get("log", ""), proxy, group, data.get("started_at", ""),
                   data.get("ticks"), int(data.get("restarts") or 0),
                   data.get("restarted_at", ""), data.get("last_exit", ""))


@dataclass
class StackState:
    """Everything `up` started and how to reach it."""

    stack_id: str
    var_dir: str
    options: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)
    gateway_url: str = ""
    gateway_admin_url: str = ""
    toxiproxy_url: str = ""
    console_url: str = ""
    registry_file: str = ""
    traces: str = ""
    capacity_bounded: bool = False
    cgroups: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    status: str = "starting"
    # The keeper: restarts an instance that dies (`local_stack.keeper`); None when not started.
    keeper: Instance | None = None

    @property
    def path(self) -> Path:
        return Path(self.var_dir) / STATE_FILE

    def of_service(self, service: str) -> list[Instance]:
        """The instances of one service, in replica order."""
        found = [i for i in self.instances.values() if i.service == service]
        return sorted(found, key=lambda i: replica_number(i.name))

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("instances", "keeper")}
        data["version"] = STATE_VERSION
        data["instances"] = {name: i.to_json() for name, i in self.instances.items()}
        data["keeper"] = self.keeper.to_json() if self.keeper else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        if data.get("version") != STATE_VERSION:
            raise StateError(f"state file version {data.get('version')!r} is not supported")
        fields = {k: v for k, v in data.items() if k not in ("version", "instances", "keeper")}
        state = cls(**fields)
        state.instances = {n: Instance.from_json(i) for n, i in data["instances"].items()}
        state.keeper = Instance.from_json(data["keeper"]) if data.get("keeper") else None
        return state

    def processes(self) -> list[Instance]:
        """Every process recorded: the instances, then the keeper."""
        return [*self.instances.values(), *([self.keeper] if self.keeper else [])]

    def save(self) -> None:
        """Write the state file atomically."""
        write_json_atomic(self.path, self.to_json())


def replica_number(name: str) -> int:
    """`product-3` -> 3; 1 for unnumbered instances."""
    _, _, number = name.rpartition("-")
    return int(number) if number.isdigit() else 1


def load_state(var_dir: str | Path) -> StackState | None:
    """The state in `var_dir`, or None when no stack was started there."""
    path = Path(var_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc}; remove it if no stack runs") from exc
    try:
        return StackState.from_json(data)
    except (KeyError, TypeError) as exc:
        raise StateError(f"{path} is not a stack state file ({exc}); remove it") from exc


def remove_state(var_dir: str | Path) -> None:
    """Delete the state file (after `down`)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(var_dir) / STATE_FILE).unlink()


def write_json_atomic(path: Path, document: Any) -> None:
    """Write JSON through a temporary file in the same folder and `os.replace`, so a reader
    never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the replace
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


@contextlib.contextmanager
def stack_lock(var_dir: str | Path, wait: float = 0.0) -> Iterator[None]:
    """Hold `var/stack.lock` so two commands never change one stack at the same time; wait
    up to `wait` seconds for a holder that is quick (the keeper restarting an instance)."""
    path = Path(var_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with open(path, "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateError(f"another breakwater command is changing this stack "
                                     f"({path}); wait for it to finish") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
