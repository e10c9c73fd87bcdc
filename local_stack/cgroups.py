"""CPU quotas per service instance with Linux cgroups, exactly like `docker run --cpus`.

cgroup v2 (`cpu.max`) is used where its cpu controller is enabled, cgroup v1
(`cpu.cfs_quota_us`, usage from `cpuacct`) otherwise; which one works is found by creating
and writing a probe group. Every group of a stack lives under one parent group named after the
stack (`breakwater-<stack id>`). When no cgroup can be written (not root, read-only, another
OS), `detect_backend` returns `NoCgroups` with the reason and the stack runs unbounded.

A process joins its group by writing its own pid into `cgroup.procs` before it starts
forking (see `join_command`), so a gunicorn master and every worker share the quota.
"""

from __future__ import annotations

import errno
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local_stack.limits import quota_us

DEFAULT_ROOT = Path("/sys/fs/cgroup")
ROOT_ENV = "BREAKWATER_CGROUP_ROOT"
DEFAULT_PERIOD_US = 100_000


class CgroupError(OSError):
    """A cgroup could not be created, written or removed."""


@dataclass
class CpuGroup:
    """The cgroup (one directory per hierarchy) holding one service instance."""

    name: str
    cpus: float
    dirs: list[str]
    kind: str

    @property
    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a process writes its pid into to join."""
        return [str(Path(d) / "cgroup.procs") for d in self.dirs]

    def to_json(self) -> dict[str, Any]:
        """The group as stored in `var/stack.json`."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CpuGroup:
        """A group read back from `var/stack.json`."""
        return cls(data["name"], float(data["cpus"]), list(data["dirs"]), data["kind"])


@dataclass
class CpuStats:
    """CPU a group has used and how long it was throttled, in seconds."""

    cpus: float
    usage_s: float | None = None
    throttled_s: float | None = None
    nr_throttled: int | None = None
    pids: int | None = None


@dataclass
class CgroupBackend(ABC):
    """Common behaviour of the v1 and v2 backends: create, join, measure, remove."""

    kind = "none"
    roots: list[Path] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Whether quotas can be applied."""
        return True

    def describe(self) -> str:
        """One line saying which hierarchy is used."""
        return f"cgroup {self.kind} at {', '.join(map(str, self.roots))}"

    def create_parent(self, name: str) -> list[str]:
        """Create the stack's parent group in every hierarchy; the directories made."""
        dirs = []
        for root in self.roots:
            path = root / name
            _mkdir(path)
            dirs.append(str(path))
            self._prepare_parent(path)
        return dirs

    def create_group(self, parent: str, instance: str, cpus: float) -> CpuGroup:
        """Create `instance`'s group under the stack's parent with a quota of `cpus`."""
        dirs = []
        for root in self.roots:
            path = root / parent / instance
            _mkdir(path)
            dirs.append(str(path))
        group = CpuGroup(instance, cpus, dirs, self.kind)
        try:
            self._set_quota(Path(dirs[0]), cpus)
        except OSError:
            remove_dirs(dirs)
            raise
        return group

    @abstractmethod
    def stats(self, group: CpuGroup) -> CpuStats:
        """Usage and throttling of a group (fields left None when a file cannot be read)."""

    def _prepare_parent(self, path: Path) -> None:  # noqa: B027 - a hook: only v2 needs it
        """Enable what children need (v2: the cpu controller)."""

    @abstractmethod
    def _set_quota(self, path: Path, cpus: float) -> None:
        """Write the quota of `cpus` CPUs into the group at `path`."""

    def probe(self) -> None:
        """Create, write and remove a test group; raises OSError when that does not work."""
        name = f"breakwater-probe-{os.getpid()}"
        parent = self.create_parent(name)
        try:
            self.create_group(name, "probe", 0.5)
        finally:
            remove_dirs([str(Path(d) / "probe") for d in parent] + parent)


@dataclass
class CgroupV2(CgroupBackend):
    """The unified hierarchy: `cpu.max` = "<quota> <period>", usage in `cpu.stat`."""

    kind = "v2"

    def _prepare_parent(self, path: Path) -> None:  # noqa: B027 - a hook: only v2 needs it
        for folder in (path.parent, path):
            control = folder / "cgroup.subtree_control"
            if "cpu" not in _read(control).split():
                _write(control, "+cpu")

    def _set_quota(self, path: Path, cpus: float) -> None:
        _write(path / "cpu.max", f"{quota_us(cpus, DEFAULT_PERIOD_US)} {DEFAULT_PERIOD_US}")

    def stats(self, group: CpuGroup) -> CpuStats:
        path = Path(group.dirs[0])
        stat = _read_keyed(path / "cpu.stat")
        usage, throttled = stat.get("usage_usec"), stat.get("throttled_usec")
        return CpuStats(
            cpus=group.cpus,
            usage_s=usage / 1e6 if usage is not None else None,
            throttled_s=throttled / 1e6 if throttled is not None else None,
            nr_throttled=stat.get("nr_throttled"),
            pids=_count_procs(path),
        )


@dataclass
class CgroupV1(CgroupBackend):
    """Legacy hierarchies: `cpu` for the quota and throttling, `cpuacct` for usage.

    `roots[0]` is the cpu hierarchy; `roots[1]`, when present, a separate cpuacct one.
    """

    kind = "v1"

    def _set_quota(self, path: Path, cpus: float) -> None:
        period = _read_int(path / "cpu.cfs_period_us") or DEFAULT_PERIOD_US
        _write(path / "cpu.cfs_quota_us", str(quota_us(cpus, period)))

    def stats(self, group: CpuGroup) -> CpuStats:
        cpu_dir = Path(group.dirs[0])
        stat = _read_keyed(cpu_dir / "cpu.stat")
        usage = None
        for folder in reversed(group.dirs):
            usage = _read_int(Path(folder) / "cpuacct.usage")
            if usage is not None:
                break
        throttled = stat.get("throttled_time")
        return CpuStats(
            cpus=group.cpus,
            usage_s=usage / 1e9 if usage is not None else None,
            throttled_s=throttled / 1e9 if throttled is not None else None,
            nr_throttled=stat.get("nr_throttled"),
            pids=_count_procs(cpu_dir),
        )


@dataclass
class NoCgroups(CgroupBackend):
    """No writable cgroup hierarchy: processes run without quotas."""

    kind = "none"
    reason: str = "cgroups are not available"

    @property
    def available(self) -> bool:
        return False

    def describe(self) -> str:
        return f"no CPU quotas: {self.reason}"

    def create_parent(self, name: str) -> list[str]:
        return []

    def create_group(self, parent: str, instance: str, cpus: float) -> CpuGroup:
        raise CgroupError(errno.ENOTSUP, self.reason)

    def _set_quota(self, path: Path, cpus: float) -> None:
        raise CgroupError(errno.ENOTSUP, self.reason)

    def stats(self, group: CpuGroup) -> CpuStats:
        return CpuStats(cpus=group.cpus)


def cgroup_root(root: str | Path | None = None) -> Path:
    """The folder cgroup hierarchies are mounted under: `root`, `BREAKWATER_CGROUP_ROOT`, or
    /sys/fs/cgroup."""
    return Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def candidates(root: Path) -> list[CgroupBackend]:
    """The backends the layout under `root` could offer, best first (not yet probed)."""
    found: list[CgroupBackend] = []
    for unified in (root, root / "unified"):
        controllers = _read(unified / "cgroup.controllers").split()
        if "cpu" in controllers:
            found.append(CgroupV2([unified]))
    for cpu_dir in (root / "cpu", root / "cpu,cpuacct", root):
        if (cpu_dir / "cpu.cfs_quota_us").is_file():
            roots = [cpu_dir]
            acct = root / "cpuacct"
            if not (cpu_dir / "cpuacct.usage").is_file() and (acct / "cpuacct.usage").is_file():
                roots.append(acct)
            found.append(CgroupV1(roots))
            break
    return found


def detect_backend(root: str | Path | None = None) -> CgroupBackend:
    """The first backend whose probe group can be created and written, else `NoCgroups`."""
    base = cgroup_root(root)
    reasons = []
    options = candidates(base)
    for backend in options:
        try:
            backend.probe()
            return backend
        except OSError as exc:
            reasons.append(f"{backend.describe()}: {exc.strerror or exc}")
    if not options:
        v2 = _read(base / "cgroup.controllers") or _read(base / "unified" / "cgroup.controllers")
        hint = " (cgroup v2 is mounted but its cpu controller is not enabled)" if v2 else ""
        reasons.append(f"no cpu controller under {base}{hint}")
    return NoCgroups(reason="; ".join(reasons))


def backend_for(kind: str, roots: list[str]) -> CgroupBackend:
    """The backend recorded in a state file (no probing)."""
    paths = [Path(r) for r in roots]
    if kind == "v2":
        return CgroupV2(paths)
    if kind == "v1":
        return CgroupV1(paths)
    return NoCgroups(reason="no CPU quotas in this stack")


def join_command(procs_files: list[str], command: list[str]) -> list[str]:
    """`command` prefixed by a tiny shell that joins the groups, then execs it (same pid)."""
    if not procs_files:
        return command
    script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; ' \
             'exec "$@"'
    return ["/bin/sh", "-ec", script, "cgroup-join", str(len(procs_files)), *procs_files,
            *command]


def remove_dirs(dirs: list[str]) -> list[str]:
    """Remove group directories, deepest first; the ones that could not be removed, with why."""
    failures = []
    for folder in sorted(dirs, key=lambda d: d.count(os.sep), reverse=True):
        try:
            _rmdir(Path(folder))
        except FileNotFoundError:
            continue
        except OSError as exc:
            failures.append(f"{folder}: {exc.strerror or exc}")
    return failures


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError as exc:
        # A real cgroup directory is removable with its control files in it; a plain folder
        # (tests point the root at one) is not, and holds only the files we wrote.
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and not _on_cgroupfs(path):
            shutil.rmtree(path)
        else:
            raise


def _on_cgroupfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    text = str(path)
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and parts[2] in ("cgroup", "cgroup2"):
            mountpoint = parts[1]
            if text == mountpoint or text.startswith(mountpoint.rstrip("/") + "/"):
                return True
    return False


def _mkdir(path: Path) -> None:
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot create {path}: {exc.strerror}") from None


def _write(path: Path, text: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot write {path}: {exc.strerror}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def _read_keyed(path: Path) -> dict[str, int]:
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _count_procs(path: Path) -> int | None:
    text = _read(path / "cgroup.procs")
    return len(text.split()) if (path / "cgroup.procs").exists() else None
