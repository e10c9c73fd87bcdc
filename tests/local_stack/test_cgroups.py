"""CPU quotas: backend detection on fake trees, the fallback, and a real 0.25-CPU group."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from local_stack import cgroups
from local_stack.progress import Progress
from local_stack.stack import StackOptions, Supervisor
from local_stack.state import StackState
from tests.local_stack.conftest import fake_v1_tree, fake_v2_tree


def test_v1_tree_is_detected_and_groups_get_quotas(tmp_path: Path) -> None:
    root = fake_v1_tree(tmp_path / "cg")
    backend = cgroups.detect_backend(root)
    assert isinstance(backend, cgroups.CgroupV1)
    assert backend.roots == [root / "cpu", root / "cpuacct"]
    parent = backend.create_parent("breakwater-test")
    group = backend.create_group("breakwater-test", "product-1", 0.25)
    quota = root / "cpu" / "breakwater-test" / "product-1" / "cpu.cfs_quota_us"
    assert quota.read_text() == "25000"
    assert group.procs_files == [str(root / "cpu/breakwater-test/product-1/cgroup.procs"),
                                 str(root / "cpuacct/breakwater-test/product-1/cgroup.procs")]
    assert cgroups.remove_dirs(group.dirs) == [] and cgroups.remove_dirs(parent) == []
    assert sorted(p.name for p in (root / "cpu").iterdir() if p.is_dir()) == []


def test_combined_cpu_cpuacct_mount_uses_one_hierarchy(tmp_path: Path) -> None:
    root = fake_v1_tree(tmp_path / "cg", separate_cpuacct=False)
    (root / "cpu" / "cpuacct.usage").write_text("0\n")
    backend = cgroups.detect_backend(root)
    assert isinstance(backend, cgroups.CgroupV1) and backend.roots == [root / "cpu"]


def test_v2_with_cpu_controller_wins_and_writes_cpu_max(tmp_path: Path) -> None:
    root = fake_v2_tree(tmp_path / "cg")
    fake_v1_tree(root)  # a hybrid layout: v2 is preferred when its cpu controller works
    backend = cgroups.detect_backend(root)
    assert isinstance(backend, cgroups.CgroupV2)
    backend.create_parent("bw")
    backend.create_group("bw", "gateway", 1.0)
    assert (root / "bw" / "gateway" / "cpu.max").read_text() == "100000 100000"
    assert (root / "bw" / "cgroup.subtree_control").read_text() == "+cpu"


def test_hybrid_v2_without_cpu_controller_falls_back_to_v1(tmp_path: Path) -> None:
    root = fake_v1_tree(tmp_path / "cg")
    fake_v2_tree(root / "unified", controllers="hugetlb")
    assert [b.kind for b in cgroups.candidates(root)] == ["v1"]
    assert cgroups.detect_backend(root).kind == "v1"


def test_no_cpu_controller_says_why(tmp_path: Path) -> None:
    fake_v2_tree(tmp_path / "cg", controllers="memory pids")
    backend = cgroups.detect_backend(tmp_path / "cg")
    assert not backend.available
    assert "cpu controller is not enabled" in backend.reason


def test_root_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cgroups.ROOT_ENV, str(fake_v1_tree(tmp_path / "env-cg")))
    assert cgroups.cgroup_root() == tmp_path / "env-cg"
    assert cgroups.detect_backend().kind == "v1"


def test_stats_read_usage_and_throttling(tmp_path: Path) -> None:
    cpu, acct = tmp_path / "cpu", tmp_path / "acct"
    cpu.mkdir(), acct.mkdir()
    (cpu / "cpu.stat").write_text("nr_periods 40\nnr_throttled 12\nthrottled_time 1500000000\n")
    (cpu / "cgroup.procs").write_text("11\n12\n")
    (acct / "cpuacct.usage").write_text("2500000000\n")
    stats = cgroups.CgroupV1([]).stats(cgroups.CpuGroup("p", 0.25, [str(cpu), str(acct)], "v1"))
    assert (stats.usage_s, stats.throttled_s, stats.nr_throttled, stats.pids) == (2.5, 1.5, 12, 2)
    (cpu / "cpu.stat").write_text("usage_usec 750000\nnr_throttled 3\nthrottled_usec 250000\n")
    stats = cgroups.CgroupV2([]).stats(cgroups.CpuGroup("p", 0.5, [str(cpu)], "v2"))
    assert (stats.usage_s, stats.throttled_s, stats.nr_throttled) == (0.75, 0.25, 3)


def test_read_only_root_falls_back_without_quotas(read_only_dir: Path, tmp_path: Path) -> None:
    backend = cgroups.detect_backend(read_only_dir)
    assert not backend.available and str(read_only_dir) in backend.reason

    notes: list[str] = []

    class Recording(Progress):
        def note(self, message: str) -> None:
            notes.append(message)

    supervisor = Supervisor(tmp_path / "var", progress=Recording(), cgroup_root=read_only_dir)
    state = StackState(stack_id="ro", var_dir=str(tmp_path / "var"))
    chosen = supervisor.setup_cgroups(state, StackOptions(profile="experiments"))
    assert not chosen.available and state.capacity_bounded is False
    assert state.cgroups["kind"] == "none" and state.cgroups["reason"]
    assert len(notes) == 1 and "not capacity-bounded" in notes[0]


def test_join_command_keeps_the_pid_and_joins_every_group(tmp_path: Path) -> None:
    files = [tmp_path / "a.procs", tmp_path / "b.procs"]
    command = cgroups.join_command([str(f) for f in files],
                                   [sys.executable, "-c", "import os; print(os.getpid())"])
    process = subprocess.run(command, capture_output=True, text=True, check=True)
    assert [f.read_text().strip() for f in files] == [process.stdout.strip()] * 2
    assert cgroups.join_command([], ["true"]) == ["true"]


BUSY = """
import time
start_wall, start_cpu = time.monotonic(), time.process_time()
while time.monotonic() - start_wall < 2.0:
    pass
print((time.process_time() - start_cpu) / (time.monotonic() - start_wall))
"""


def test_a_busy_child_in_a_quarter_cpu_group_gets_a_quarter_cpu(
    real_cgroups: cgroups.CgroupBackend,
) -> None:
    parent = f"breakwater-test-{uuid.uuid4().hex[:8]}"
    parent_dirs = real_cgroups.create_parent(parent)
    group = None
    try:
        group = real_cgroups.create_group(parent, "busy", 0.25)
        command = cgroups.join_command(group.procs_files, [sys.executable, "-c", BUSY])
        output = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
        share = float(output.stdout)
        print(f"CPU share inside a 0.25 group: {share:.3f}")
        assert 0.1 <= share <= 0.45
        stats = real_cgroups.stats(group)
        assert stats.usage_s is not None and 0.2 <= stats.usage_s <= 1.0
        assert stats.nr_throttled and stats.nr_throttled > 0
    finally:
        failures = cgroups.remove_dirs(group.dirs if group else [])
        failures += cgroups.remove_dirs(parent_dirs)
    assert failures == []
    assert not any(os.path.exists(d) for d in parent_dirs)
