"""What every benchmark shares: run settings (full or quick), progress lines, the time budget,
the machine's facts and CPU pinning."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class RunSettings:
    """Durations and repetition counts of one run (`full()` or `quick()`)."""

    mode: str
    reps: int
    micro_seconds: float  # wrk seconds per endpoint and repetition (gateway, tracing)
    micro_slices: int  # ... cut into this many alternating slices (whole seconds each)
    micro_connections: int
    sequential_count: int  # requests of a low-concurrency latency measurement
    proxy_seconds: float  # wrk seconds per relay and repetition, in one-second slices
    proxy_connections: int
    toxic_samples: int  # round trips with the 100 ms latency toxic, per repetition
    isolation_scale: float  # duration scale of cart-outage / cart-latency runs
    isolation_warmup_s: float  # ... plus this much unscaled warm-up before their windows
    isolation_resilience_off: bool
    isolation_experiments: tuple[str, ...]
    failfast_open_samples: int
    rejoin_reps: int  # hang-then-heal cycles of one product replica
    rejoin_hold_s: float  # the replica stays hung this long after its breaker opened
    rejoin_share_s: float  # the window after rejoining whose share of reads is measured
    integrity_scale: float
    integrity_buyers: int | None  # None: the definition's own numbers
    integrity_stock: int | None
    scaling_scale: float
    scaling_replicas: tuple[int, ...]
    isolation_users: int | None  # None: the definitions' own load (30 users, 40 accounts)
    one_stack: bool  # quick: every experiment on one stack (see bench.stacks.shared_options)
    seed_users: int
    budget_s: float  # past this, benchmarks not yet started are skipped

    @classmethod
    def full(cls) -> RunSettings:
        """The real run: medians of 3, about 8-10 minutes on 2 cores."""
        return cls(mode="full", reps=3, micro_seconds=3, micro_slices=3,
                   micro_connections=16,
                   sequential_count=150, proxy_seconds=4, proxy_connections=32,
                   toxic_samples=20, isolation_scale=0.3, isolation_warmup_s=2.5,
                   isolation_resilience_off=True,
                   isolation_experiments=("cart-outage", "cart-latency"),
                   failfast_open_samples=200, rejoin_reps=2, rejoin_hold_s=3.0,
                   rejoin_share_s=5.0, integrity_scale=0.4, integrity_buyers=None,
                   integrity_stock=None, scaling_scale=0.45, scaling_replicas=(1, 2, 3),
                   isolation_users=None, one_stack=False, seed_users=60, budget_s=13.5 * 60)

    @classmethod
    def quick(cls) -> RunSettings:
        """A smoke check of every code path: one short repetition each, under 2 minutes."""
        return cls(mode="quick", reps=1, micro_seconds=1, micro_slices=1,
                   micro_connections=16,
                   sequential_count=30, proxy_seconds=1, proxy_connections=32,
                   toxic_samples=4, isolation_scale=0.25, isolation_warmup_s=1.0,
                   isolation_resilience_off=False,
                   isolation_experiments=("cart-outage",), failfast_open_samples=60,
                   rejoin_reps=1, rejoin_hold_s=1.0, rejoin_share_s=3.0,
                   integrity_scale=0.25, integrity_buyers=12, integrity_stock=5,
                   scaling_scale=0.25, scaling_replicas=(1, 2), isolation_users=12,
                   one_stack=True, seed_users=12, budget_s=115)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON results."""
        return asdict(self)


@dataclass
class Context:
    """One run: its settings, its scratch folder, its clock, and its log."""

    settings: RunSettings
    work: Path
    began: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        """A progress line, stamped with the time since the run began."""
        line = f"[{self.elapsed():6.1f}s] {message}"
        self.lines.append(line)
        # stdout may go away (`| head`): keep going, so that cleanup still runs.
        with contextlib.suppress(OSError):
            print(line, flush=True)

    def quiet(self, message: str) -> None:
        """Detail lines (experiment logs) kept for the record, shown indented."""
        self.log("    " + message)

    def elapsed(self) -> float:
        """Seconds since the run began."""
        return time.monotonic() - self.began

    def over_budget(self) -> bool:
        """Whether the run has used its time budget (later benchmarks are skipped)."""
        return self.elapsed() > self.settings.budget_s


_START_CPUS = sorted(os.sched_getaffinity(0))  # before any pinning of our own


def cpus() -> list[int]:
    """The CPUs this process was allowed to run on when it started."""
    return list(_START_CPUS)


def cpu_layout() -> dict[str, int | None]:
    """Which CPU the load generator and the servers get (None: no pinning on one CPU)."""
    available = cpus()
    if len(available) < 2:
        return {"load": None, "server": None}
    return {"load": available[0], "server": available[1]}


def cpu_speed_ms(cpu: int | None, repeats: int = 3) -> float:
    """Milliseconds of CPU a fixed pure-Python workload takes on `cpu` (the fastest of
    `repeats`). It runs the same instructions every time, so its spread over a run is the
    machine's own: a virtual machine's core runs faster or slower as its host's other guests
    come and go, and no process's CPU accounting shows it."""
    previous = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        best = float("inf")
        for _ in range(repeats):
            started = time.thread_time()
            total = 0
            for n in range(60_000):
                total += n * n % 7
            best = min(best, time.thread_time() - started)
        return round(best * 1000, 3)
    finally:
        os.sched_setaffinity(0, previous)


@contextlib.contextmanager
def pinned_to(cpu: int | None) -> Iterator[None]:
    """Run this process (the load generator) on one CPU for the duration of the block."""
    previous = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, OS, Python, cgroup CPU controller, load generator found."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_mb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_mb = int(first.split()[1]) // 1024
    load = None
    with contextlib.suppress(OSError):
        load = os.getloadavg()
    return {"cores": os.cpu_count(), "usable_cpus": cpus(), "cpu_model": model,
            "memory_mb": memory_mb, "os": platform.platform(), "python": sys.version.split()[0],
            "loadavg_at_start": [round(x, 2) for x in load] if load else None,
            "wrk": shutil.which("wrk"), "taskset": shutil.which("taskset"),
            "git_commit": _git_commit()}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def load_average() -> float | None:
    """The 1-minute load average now (noise evidence)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
