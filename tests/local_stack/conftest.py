"""Fixtures of the supervisor tests: fake cgroup trees and a directory nobody can write."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def fake_v1_tree(root: Path, separate_cpuacct: bool = True) -> Path:
    """A folder laid out like a cgroup v1 mount: cpu (quota files) and cpuacct."""
    cpu = root / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    (cpu / "cgroup.procs").write_text("")
    if separate_cpuacct:
        (root / "cpuacct").mkdir()
        (root / "cpuacct" / "cpuacct.usage").write_text("0\n")
    return root


def fake_v2_tree(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    """A folder laid out like a cgroup v2 mount with the given controllers."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder with a cgroup-v1-like layout in which nothing can be created, even by root
    (chmod for ordinary users; the immutable attribute or a read-only bind mount for root)."""
    folder = fake_v1_tree(tmp_path / "ro-cgroup")
    undo: list[list[str]] = []
    for folder_or_file in (folder, folder / "cpu", folder / "cpuacct"):
        folder_or_file.chmod(0o555)
    if _writable(folder / "cpu"):
        for path in (folder / "cpu", folder / "cpuacct"):
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
                undo.append(["chattr", "-i", str(path)])
    if _writable(folder / "cpu"):
        bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if bound.returncode == 0:
            undo.append(["umount", str(folder)])
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True)
    if _writable(folder / "cpu"):
        for command in reversed(undo):
            subprocess.run(command, capture_output=True)
        pytest.skip("cannot make a read-only folder here (root, no chattr, no bind mount)")
    try:
        yield folder
    finally:
        for command in reversed(undo):
            subprocess.run(command, capture_output=True)
        for path in (folder, folder / "cpu", folder / "cpuacct"):
            with contextlib.suppress(OSError):
                path.chmod(0o755)


@pytest.fixture
def real_cgroups():
    """The host's working cgroup backend, or skip saying why there is none."""
    from local_stack.cgroups import detect_backend

    if os.geteuid() != 0:
        pytest.skip("real CPU quotas need root (cgroups are not writable by this user)")
    backend = detect_backend()
    if not backend.available:
        pytest.skip(f"no writable cgroup CPU controller: {backend.reason}")
    return backend
